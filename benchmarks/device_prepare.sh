#!/usr/bin/env bash
# Prepare .whl/ for benchmarks/device_check.sh: what the GPU machine lacks, for its platform.
#
# Run on this (CPU) machine, from the repository root, before a session with a GPU:
#     benchmarks/device_prepare.sh
# The GPU machine (Python 3.12, torch 2.11, torchvision, pandas, scikit-image, pluggy, click,
# tqdm, matplotlib, pyyaml, einops, filelock, tabulate, scipy, setuptools, pytest) reaches no
# package registry, so everything else travels with the working tree in the git-ignored .whl/
# (named in the device tool's `carry`). Working tree plus carried paths: 64 MiB at most.
#
# .whl/ afterwards holds:
#   *.whl                      pydantic + pydantic-core + annotated-types + typing-inspection +
#                              typing-extensions, lpips: manylinux x86_64 / py3 wheels, --no-deps,
#                              the same versions as this checkout's .venv (tested here)
#   data/mnist/*.gz            the MNIST digits Moving-MNIST is generated from (train + test images)
#   data/weights/alexnet_features-7be5be79.pth   the AlexNet trunk of LPIPS
#   MANIFEST.txt               what is here, the sizes, and what was left out and why
# Left out (do not fit, or nothing in the check needs them): av (PyAV, about 35 MB with its
# FFmpeg: no part of the check decodes video) and ray (far over the limit: the --gpus-per-run
# part is skipped and says so).
#
# Options: --python-version X.Y (default 3.12: the GPU machine's), --data DIR (default
# ../shared/data or $VPBENCH_TEST_DATA), --dest DIR (default .whl; another folder is for a
# rehearsal of the install step with wheels of this machine's Python).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

PYVER=3.12
DEST=.whl
DATA=${VPBENCH_TEST_DATA:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --python-version) PYVER=${2:?--python-version needs X.Y}; shift 2 ;;
        --dest) DEST=${2:?--dest needs a folder}; shift 2 ;;
        --data) DATA=${2:?--data needs a folder}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "device_prepare.sh: unknown argument '$1'; see --help" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "device_prepare.sh: no Python at $PY; create the venv (make) or set PYTHON" >&2; exit 2; }
if [ -z "$DATA" ]; then DATA=$ROOT/../shared/data; [ -d "$DATA" ] || DATA=/work/shared/data; fi
MNIST=$DATA/mnist
WEIGHTS=$DATA/weights/alexnet_features-7be5be79.pth
for f in "$MNIST/train-images-idx3-ubyte.gz" "$MNIST/t10k-images-idx3-ubyte.gz" "$WEIGHTS"; do
    [ -f "$f" ] || { echo "device_prepare.sh: $f is missing; give the shared data folder with --data DIR" >&2; exit 2; }
done

# the versions tested here, so the GPU machine imports the same code
version() { "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
PACKAGES=(pydantic pydantic-core annotated-types typing-inspection typing-extensions lpips)
PINS=()
for p in "${PACKAGES[@]}"; do PINS+=("$p==$(version "$p")"); done

ABI=cp${PYVER/./}
rm -rf "$DEST"
mkdir -p "$DEST/data/mnist" "$DEST/data/weights"
echo "downloading for Python $PYVER manylinux x86_64: ${PINS[*]}"
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$PYVER" --implementation cp --abi "$ABI" --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$DEST" "${PINS[@]}" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
cp "$MNIST/train-images-idx3-ubyte.gz" "$MNIST/t10k-images-idx3-ubyte.gz" "$DEST/data/mnist/"
cp "$WEIGHTS" "$DEST/data/weights/"

# the pydantic closure is complete and consistent for that platform (lpips needs torch,
# torchvision, numpy, scipy and tqdm, which the GPU machine has)
"$PY" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed --no-index \
    --find-links "$DEST" --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --target "$(mktemp -d)" pydantic \
    || { echo "device_prepare.sh: the wheels in $DEST do not resolve pydantic's dependencies" >&2; exit 1; }

# what travels: tracked files and untracked files git does not ignore, plus the carried folder
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
carry_bytes=$(du -sb "$DEST" | cut -f1)
limit=$((64 * 1024 * 1024))
total=$((tree_bytes + carry_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
{
    echo "# $DEST for benchmarks/device_check.sh (made by benchmarks/device_prepare.sh, $(date -u +%Y-%m-%dT%H:%MZ))"
    echo "python $PYVER manylinux x86_64; versions as in $PY"
    (cd "$DEST" && find . -type f ! -name MANIFEST.txt -printf '%s %p\n' | sort -k2)
    echo "left out: av (PyAV, ~35 MB with FFmpeg; nothing in the check decodes video), ray (ray[tune], far over 64 MiB: the --gpus-per-run part is skipped)"
    echo "working tree $(mib "$tree_bytes") + $DEST $(mib "$carry_bytes") = $(mib "$total") of the device tool's 64 MiB"
} > "$DEST/MANIFEST.txt"
cat "$DEST/MANIFEST.txt"
if [ "$total" -gt "$limit" ]; then
    echo "device_prepare.sh: $(mib "$total") is over the 64 MiB the device tool carries; remove something" >&2
    exit 1
fi
