"""Every registered model, dataset and metric honours its contract (timm-style, registry-driven).

The checks are vpbench's conformance kit (:mod:`vpbench.testing`, also `vpbench check`), the
same one a third-party plugin package runs: a new plugin is tested here without a line.
Datasets whose data is not prepared are skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vpbench.plugins import get_registry
from vpbench.testing import all_cases, dataset_cases, metric_cases, model_cases, run_in_pytest

REGISTRY = get_registry()
DATA = Path(os.environ["VPBENCH_TEST_DATA"]) if os.environ.get("VPBENCH_TEST_DATA") else None
ALEXNET = DATA / "weights" / "alexnet_features-7be5be79.pth" if DATA else None


@pytest.mark.parametrize("case", model_cases(REGISTRY), ids=str)
def test_model_conformance(case):
    run_in_pytest(case)


@pytest.mark.parametrize("case", metric_cases(REGISTRY), ids=str)
def test_metric_conformance(case, monkeypatch):
    if ALEXNET is not None and ALEXNET.is_file():  # LPIPS is checked too when the real weights are here
        monkeypatch.setenv("VPBENCH_LPIPS_WEIGHTS", str(ALEXNET))
    run_in_pytest(case)


@pytest.mark.parametrize("case", dataset_cases(REGISTRY, ["glyphs"]), ids=str)
def test_generated_dataset_conformance(case):
    run_in_pytest(case)


def test_every_registered_component_has_cases():
    cases = all_cases(REGISTRY)
    kinds = {(c.kind, c.name) for c in cases}
    assert {("model", n) for n in REGISTRY.models.names()} <= kinds
    assert {("dataset", n) for n in REGISTRY.datasets.names()} <= kinds
    assert {("metric", n) for n in REGISTRY.metrics.names()} <= kinds


def test_the_kit_catches_a_model_that_breaks_the_contract():
    """The kit can fail: a model predicting one frame too few and unclamped is caught."""
    import vpbench
    from vpbench.testing import ConformanceFailure

    class Short(vpbench.VideoModel):
        def predict(self, context, horizon):  # type: ignore[no-untyped-def]
            return context[:, -1:].expand(-1, horizon - 1, -1, -1, -1) * 3

    class Plugin:
        @vpbench.hookimpl
        def register_models(self, register):  # type: ignore[no-untyped-def]
            register(vpbench.ModelSpec(name="short", target=f"{__name__}:_SHORT", description="d", trainable=False))

    globals()["_SHORT"] = Short
    reg = get_registry([Plugin()], load_entry_points=False)
    (case, *_) = model_cases(reg, ["short"])
    with pytest.raises(ConformanceFailure, match=r"predict must return \[2, 3, 1, 32, 32\] .*got \(2, 2, 1, 32, 32\)"):
        case.run()
