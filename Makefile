# The two set-up commands of the README: `make demo` (main job) and `make test`.
# Both create .venv on first use and install vpbench with everything it needs.

PY      ?= python3
VENV    ?= .venv
BIN      = $(VENV)/bin
STAMP    = $(VENV)/.vpbench-installed
SHARED   = $(abspath ../shared/data)
# tests use the real third-party data when the checkout sits beside ../shared/data
TESTDATA = $(if $(wildcard $(SHARED)/SOURCES.md),VPBENCH_TEST_DATA=$(SHARED),)
# LPIPS (and the default checkpoint selection on it) uses the AlexNet weights there when present
LPIPSW   = $(SHARED)/weights/alexnet_features-7be5be79.pth
LPIPSENV = $(if $(wildcard $(LPIPSW)),VPBENCH_LPIPS_WEIGHTS=$(LPIPSW),)

.PHONY: setup demo test typecheck clean-runs

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev,tune]"
	touch $(STAMP)

setup: $(STAMP)

## main job: S-HR-VQVAE trained and tested on the embedded dataset (CPU, a few minutes)
demo: $(STAMP)
	$(LPIPSENV) $(BIN)/vpbench run --model shrvq --dataset glyphs --out runs/demo-shrvq-glyphs-$$(date +%Y%m%d-%H%M%S)

## the whole test suite (and the core's type check)
test: $(STAMP)
	$(BIN)/mypy
	$(TESTDATA) $(BIN)/python -m pytest -q -p no:cacheprovider

typecheck: $(STAMP)
	$(BIN)/mypy
