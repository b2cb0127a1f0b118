#!/usr/bin/env bash
# Every CUDA path of vpbench in one command: at most 8 minutes on one GPU (docs/device.md).
#
#   benchmarks/device_check.sh [--device cuda|cpu] [--tiny] [OUTDIR]
#
# Made for a GPU machine that reaches no package registry (the device tool's H200): the
# packages it lacks come from .whl/, prepared beforehand with benchmarks/device_prepare.sh
# and carried beside the working tree. Parts, each with its own time limit so one hang
# cannot eat the budget (seconds: full / --tiny):
#   env      what runs where: GPU, driver, Python, torch, where each package is imported from (30)
#   install  pydantic and lpips from .whl/ when missing (pip --no-index --target), and
#            vpbench itself with its entry points when missing (pip -e, or a metadata shim) (60)
#   tests    pytest -m cuda tests/test_cuda.py: seeded determinism and exact resume on CUDA,
#            bf16/fp16 training (and an fp16 resume), every metric equal on GPU and CPU (--device cpu: the whole
#            file, whose CPU variants exercise the same code) (130 / 240)
#   profile  benchmarks/device_profile.py: `vpbench profile` of every registered model on
#            Moving-MNIST at batch 16, beside OpenSTL's published V100 speed (110 / 240)
#   runs     benchmarks/device_runs.py: a short Moving-MNIST run of every trained model,
#            records included (what the parts before it left of 470 s, 60 to 300)
#   bench    `vpbench bench --gpus-per-run 1` on the tiny glyphs suite: only where Ray is
#            installed and a GPU is used; Ray (a 79 MB wheel) does not fit the 64 MiB carried (60)
# On a GPU the parts take at most 470 s together, under 8 minutes even when every part runs to
# its limit (without Ray); install and env usually take seconds, which the runs then get. The
# profile and runs parts share their time out among the models.
#
# OUTDIR (default $OUT, the device tool's folder that comes back) receives at most 8 files, as
# the device tool returns them: summary.md (printed at the end too), device_check.log
# (everything printed), pytest.xml, profile.csv, profile.md, runs.md and results.tar.gz (the
# run directories without checkpoints, the raw profile outputs and the runs' log).
#
# Options:
#   --device cuda|cpu   where the models run (default cuda; cpu for a rehearsal)
#   --tiny              tiny models and budgets: the CPU rehearsal (about 3 minutes here)
#   --wheels DIR        the prepared folder (default .whl)
#   --force-wheels      install the carried wheels even when the packages are importable
#   --vpbench-install auto|pip|shim   how to install vpbench when it is missing (default auto:
#                       pip -e ., and the shim when pip cannot build it)
#   --parts LIST        comma-separated subset of env,install,tests,profile,runs,bench
#   --models LIST       comma-separated subset of the models (profile and runs)
#   --keep              keep the work folder (its path is printed)
#   --time-scale N      multiply every time limit by N (a whole number, default 1): a rehearsal
#                       on a loaded machine checks what the parts do, not how fast
# Environment: PYTHON (default .venv/bin/python when present, else python3).
set -uo pipefail

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "device_check.sh: $*" >&2; exit 2; }

DEVICE=cuda TINY=0 WHEELS=.whl FORCE_WHEELS=0 VP_INSTALL=auto KEEP=0 MODELS="" SCALE=1
PARTS=env,install,tests,profile,runs,bench
OUTDIR=${OUT:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=${2:-}; shift 2 || die "--device needs cuda or cpu" ;;
        --tiny) TINY=1; shift ;;
        --wheels) WHEELS=${2:-}; shift 2 || die "--wheels needs a folder" ;;
        --force-wheels) FORCE_WHEELS=1; shift ;;
        --vpbench-install) VP_INSTALL=${2:-}; shift 2 || die "--vpbench-install needs auto, pip or shim" ;;
        --parts) PARTS=${2:-}; shift 2 || die "--parts needs a list, e.g. tests,profile" ;;
        --models) MODELS=${2:-}; shift 2 || die "--models needs a list, e.g. convlstm,shrvq" ;;
        --keep) KEEP=1; shift ;;
        --time-scale) SCALE=${2:-}; shift 2 || die "--time-scale needs a whole number, e.g. 10" ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option '$1'; see --help" ;;
        *) OUTDIR=$1; shift ;;
    esac
done
case "$DEVICE" in cuda|cpu) ;; *) die "--device must be cuda or cpu, got '$DEVICE'" ;; esac
case "$VP_INSTALL" in auto|pip|shim) ;; *) die "--vpbench-install must be auto, pip or shim, got '$VP_INSTALL'" ;; esac
case "$SCALE" in ""|*[!0-9]*|0) die "--time-scale must be a whole number of at least 1, got '$SCALE'" ;; esac
for p in ${PARTS//,/ }; do
    case "$p" in env|install|tests|profile|runs|bench) ;; *) die "unknown part '$p' in --parts; parts: env,install,tests,profile,runs,bench" ;; esac
done
[ -n "$OUTDIR" ] || die "no output folder: give OUTDIR, or run where \$OUT is set (the device tool)"

cd "$(dirname "$0")/.." || die "cannot enter the repository root"
ROOT=$PWD
case "$WHEELS" in /*) ;; *) WHEELS=$ROOT/$WHEELS ;; esac
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null || die "no Python '$PYTHON'; set PYTHON"
mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vpbench-device.XXXXXX") || die "cannot create a work folder"
SITE=$WORK/site
LOG=$OUTDIR/device_check.log
STATUS=$WORK/parts.tsv
: > "$LOG"; : > "$STATUS"
START=$(date +%s)
SECONDS=0

export PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
[ "$DEVICE" = cpu ] && export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export VPBENCH_DATA=$WHEELS/data
[ -f "$WHEELS/data/weights/alexnet_features-7be5be79.pth" ] && export VPBENCH_LPIPS_WEIGHTS=$WHEELS/data/weights/alexnet_features-7be5be79.pth
export MPLBACKEND=Agg

say() { echo "$*" | tee -a "$LOG"; }
wanted() { case ",$PARTS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# part NAME LIMIT_S NOTE -- COMMAND...: runs COMMAND under `timeout`, logs it, records its status
part() {
    local name=$1 limit=$2 note=$3; shift 4
    if ! wanted "$name"; then printf '%s\tnot asked\t0\t%s\n' "$name" "--parts" >> "$STATUS"; return 0; fi
    say ""; say "=== $name (limit ${limit} s): $note"
    local t0=$SECONDS rc
    if declare -F "$1" >/dev/null; then set -- bash -c '"$@"' _ "$@"; fi  # a function of this script
    timeout -k 15 "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    local status=ok
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status="TIMED OUT"; elif [ "$rc" != 0 ]; then status="FAILED (exit $rc)"; fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" "$note" >> "$STATUS"
    say "=== $name: $status in $((SECONDS - t0)) s"
    return 0
}
skip() { say ""; say "=== $1: skipped: $2"; printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$STATUS"; }
tiny() { if [ "$TINY" = 1 ]; then echo "$2"; else echo "$1"; fi; }
lim() { echo $(( $1 * SCALE )); }  # a time limit, scaled by --time-scale
TOTAL=$(lim "$(tiny 470 1200)")  # seconds for all parts; the runs part gets what the others leave

# ------------------------------------------------------------------------------ parts
env_facts() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)   host: $(hostname)   cores: $(nproc)"
    if git rev-parse --short HEAD >/dev/null 2>&1; then
        echo "git: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (uncommitted changes)')"
    else
        echo "git: none in this copy of the working tree (records will have no commit: note the one that was sent)"
    fi
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    "$PYTHON" - <<'EOF'
import importlib, importlib.metadata as md, platform, sys
import torch
print(f"python {platform.python_version()} at {sys.executable}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none visible'}")
for name in ("pydantic", "lpips", "av", "ray", "vpbench"):
    try:
        mod = importlib.import_module(name)
        print(f"{name}: {getattr(mod, '__version__', '?')} from {mod.__file__}")
    except Exception as exc:  # noqa: BLE001 - report whatever stops the import
        print(f"{name}: not importable ({type(exc).__name__}: {exc})")
plugins = sorted(ep.name for ep in md.entry_points(group="vpbench"))
print(f"vpbench entry points: {', '.join(plugins) or 'none'}")
EOF
}

have_module() { "$PYTHON" -c "import $1" 2>/dev/null; }
have_vpbench() {  # this checkout's vpbench, with its plugins' entry points
    "$PYTHON" - "$ROOT" <<'EOF' 2>/dev/null
import importlib.metadata as md, pathlib, sys
import vpbench
assert pathlib.Path(vpbench.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]).resolve())
assert {"mmnist", "metrics", "rnn", "shrvq", "baselines"} <= {ep.name for ep in md.entry_points(group="vpbench")}
EOF
}
vpbench_shim() {  # what an editable install writes: the import path and the entry points' metadata
    "$PYTHON" - "$SITE" <<'EOF'
import pathlib, sys, tomllib
site = pathlib.Path(sys.argv[1])
project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
info = site / f"vpbench-{project['version']}.dist-info"
info.mkdir(parents=True, exist_ok=True)
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vpbench\nVersion: {project['version']}\n")
groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
(info / "entry_points.txt").write_text("".join(
    f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for g, eps in groups.items()))
print(f"vpbench metadata shim: {info}")
EOF
}
install() {
    local missing=()
    for m in pydantic lpips; do have_module "$m" || missing+=("$m"); done
    if [ "${#missing[@]}" -gt 0 ] || [ "$FORCE_WHEELS" = 1 ]; then
        ls "$WHEELS"/*.whl >/dev/null 2>&1 \
            || { echo "no wheels in $WHEELS: run benchmarks/device_prepare.sh where pip reaches PyPI, and carry .whl"; return 1; }
        echo "installing $(cd "$WHEELS" && ls *.whl | tr '\n' ' ')into $SITE (missing: ${missing[*]:-none, --force-wheels})"
        "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
            --target "$SITE" "$WHEELS"/*.whl || return 1
    else
        echo "pydantic and lpips are importable: no wheels installed"
    fi
    if [ "$VP_INSTALL" = auto ] && have_vpbench; then echo "vpbench from this checkout is installed"; return 0; fi
    if [ "$VP_INSTALL" != shim ] && "$PYTHON" -m pip install --quiet --no-index --no-deps --no-build-isolation \
            --disable-pip-version-check -e "$ROOT"; then
        echo "vpbench installed: pip install -e (no index, no build isolation)"
    else
        [ "$VP_INSTALL" = pip ] && return 1
        [ "$VP_INSTALL" = auto ] && echo "pip could not install vpbench here; using the metadata shim"
        vpbench_shim || return 1
        echo "$ROOT:$ROOT/plugins" > "$WORK/shim-path"
    fi
}

tests() {
    local select=(-m cuda)
    [ "$DEVICE" = cpu ] && select=()  # the CPU variants rehearse the same test code; the CUDA ones skip
    "$PYTHON" -m pytest "${select[@]}" tests/test_cuda.py -q -rfEs -p no:cacheprovider --junitxml="$OUTDIR/pytest.xml"
}

bench() {
    "$PYTHON" -m vpbench bench configs/suites/glyphs-tiny.yaml --gpus-per-run 1 --out "$WORK/bench" --quiet
}

# --------------------------------------------------------------------------------- run
export DEVICE TINY WHEELS FORCE_WHEELS VP_INSTALL SITE WORK ROOT PYTHON OUTDIR
export -f have_module have_vpbench vpbench_shim install env_facts tests bench
say "vpbench device check: device $DEVICE$( [ "$TINY" = 1 ] && echo ', tiny (rehearsal)'), output $OUTDIR, work $WORK"
part install "$(lim 60)" "wheels from $WHEELS when missing; vpbench with its entry points" -- install
[ -d "$SITE" ] && export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
[ -f "$WORK/shim-path" ] && export PYTHONPATH=$(cat "$WORK/shim-path"):$PYTHONPATH
part env "$(lim 30)" "machine, versions, where each package comes from" -- env_facts
cuda_ok=1
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    cuda_ok=0
fi
if [ "$cuda_ok" = 0 ]; then
    for p in tests profile runs bench; do skip "$p" "--device cuda but torch sees no CUDA GPU (see env)"; done
else
    part tests "$(lim "$(tiny 130 240)")" "CUDA determinism, resume, bf16/fp16, metric parity (pytest tests/test_cuda.py)" -- tests
    prof=(--device "$DEVICE" --out "$WORK/profile" --budget "$(lim "$(tiny 100 220)")")
    runs=(--device "$DEVICE" --out "$WORK/runs" --data-root "$VPBENCH_DATA")
    [ "$TINY" = 1 ] && { prof+=(--tiny); runs+=(--tiny --cap "$(lim 100)"); }
    trained=""
    if [ -n "$MODELS" ]; then
        prof+=(--models "$MODELS")
        trained=$("$PYTHON" -c "import sys; from vpbench.plugins import get_registry; r = get_registry()
print(','.join(m for m in sys.argv[1].split(',') if m in r.models and r.models.get(m).trainable))" "$MODELS")
        runs+=(--models "$trained")
    fi
    part profile "$(lim "$(tiny 110 240)")" "vpbench profile of every model, Moving-MNIST, batch $(tiny 16 2), vs OpenSTL V100" -- \
        "$PYTHON" benchmarks/device_profile.py "${prof[@]}"
    if [ -n "$MODELS" ] && [ -z "$trained" ]; then
        skip runs "no trainable model among --models $MODELS"
    else
        # the runs get what the earlier parts left of the total (at least 60 s, at most 300 s)
        limit=$(( TOTAL - SECONDS - 15 )); [ "$limit" -gt "$(lim 300)" ] && limit=$(lim 300); [ "$limit" -lt "$(lim 60)" ] && limit=$(lim 60)
        part runs "$limit" "short Moving-MNIST run of every trained model, records" -- \
            "$PYTHON" benchmarks/device_runs.py "${runs[@]}" --budget $((limit - 10))
    fi
    if [ "$DEVICE" != cuda ]; then
        skip bench "--gpus-per-run needs a GPU (on CPU, tests/test_bench.py covers vpbench bench)"
    elif ! have_module ray; then
        skip bench "ray is not installed and its wheel (79 MB) does not fit the 64 MiB carried: --gpus-per-run unproven"
    else
        part bench "$(lim 60)" "vpbench bench glyphs-tiny --gpus-per-run 1 (Ray)" -- bench
    fi
fi

# ------------------------------------------------------------------------ what comes back
for f in profile.csv profile.md; do [ -f "$WORK/profile/$f" ] && cp "$WORK/profile/$f" "$OUTDIR/"; done
[ -f "$WORK/runs/runs.md" ] && cp "$WORK/runs/runs.md" "$OUTDIR/"
(cd "$WORK" && tar -czf "$OUTDIR/results.tar.gz" --exclude='*/checkpoints' --exclude=.run.lock --exclude=site --exclude=shim-path \
    $(ls -d profile runs bench 2>/dev/null)) 2>>"$LOG"
{
    echo "# vpbench device check"
    echo
    echo "device \`$DEVICE\`$( [ "$TINY" = 1 ] && echo ', tiny budgets (a rehearsal)'), $(($(date +%s) - START)) s in all; git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
    echo '```'
    sed -n '/^=== env/,/^=== env:/p' "$LOG" | grep -v '^==='
    echo '```'
    echo
    echo "| part | status | seconds | what |"
    echo "|---|---|---:|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$STATUS"
    echo
    if [ -f "$OUTDIR/pytest.xml" ]; then
        echo "### tests/test_cuda.py"
        echo
        echo '```'
        sed -n '/^=== tests/,/^=== tests:/p' "$LOG" | grep -E '^(FAILED|ERROR|SKIPPED|[0-9]+ (passed|failed|skipped)|.* in [0-9.]+s)' | tail -25
        echo '```'
        echo
    fi
    [ -f "$OUTDIR/profile.md" ] && { cat "$OUTDIR/profile.md"; echo; }
    [ -f "$OUTDIR/runs.md" ] && { cat "$OUTDIR/runs.md"; echo; }
    echo "Files: summary.md $(cd "$OUTDIR" && ls | grep -vx summary.md | tr '\n' ' ')"
    echo "(results.tar.gz: the run directories without checkpoints and the raw outputs; docs/device.md says what to do with the records)."
} > "$OUTDIR/summary.md"
echo
cat "$OUTDIR/summary.md"
rc=0
grep -qvP '\t(ok|skipped|not asked)\t' "$STATUS" && rc=1  # a part failed or timed out
if [ "$KEEP" = 1 ]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
exit "$rc"
