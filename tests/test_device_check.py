"""benchmarks/device_check.sh, the one command a GPU session runs, rehearsed on the CPU.

The whole rehearsal (``--device cpu --tiny``: tests, every model's profile and run) takes a
few minutes here, so CI runs the script end to end on a subset (``--parts profile,runs`` with
one baseline and one trained model) and checks what comes back: at most 8 files in OUTDIR, the
summary's part table, the profile table, and a valid run record without checkpoints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from vpbench.plugins import get_registry
from vpbench.records import read_record

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def _script(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **(env or {})}
    full.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=timeout)


def test_bad_arguments_are_one_line_errors_and_help_explains():
    for args, words in [
        (["--device", "gpu", "/tmp/x"], "--device must be cuda or cpu"),
        (["--parts", "tests,nope", "/tmp/x"], "unknown part 'nope'"),
        (["--time-scale", "0", "/tmp/x"], "--time-scale must be a whole number"),
        ([], "no output folder"),
    ]:
        proc = _script(*args)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    help_text = _script("--help").stdout
    for part in ("install", "tests", "profile", "runs", "bench", "--tiny", "--time-scale", "64 MiB", "470 s"):
        assert part in help_text


def test_every_openstl_reference_names_a_registered_model():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import device_profile
    finally:
        sys.path.pop(0)
    assert set(device_profile.OPENSTL_V100) <= set(get_registry().models.names())
    notes = Path(os.environ.get("VPBENCH_TEST_DATA", ROOT / ".." / "shared" / "data")) / ".." / "reference" / "field-notes.md"
    if not notes.is_file():
        pytest.skip(f"{notes} not here: the published numbers are checked against the field notes where they are")
    text = notes.read_text()
    for row, params, gmacs, fps in device_profile.OPENSTL_V100.values():
        # the row of OpenSTL's model zoo as the field notes copy it: | name | 15.0M | 56.8G | 113 | ...
        assert f"| {row} | {params / 1e6:.1f}M | {gmacs:.1f}G | {fps:.0f} |" in text, row


def test_rehearsal_of_profile_and_runs_returns_summary_table_and_record(shared_data, tmp_path):
    carried = tmp_path / "whl"  # what device_prepare.sh puts in .whl/: digits and LPIPS weights
    (carried / "data" / "mnist").mkdir(parents=True)
    (carried / "data" / "weights").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (carried / "data" / "mnist" / name).symlink_to(shared_data / "mnist" / name)
    weights = shared_data / "weights" / "alexnet_features-7be5be79.pth"
    (carried / "data" / "weights" / weights.name).symlink_to(weights)
    out = tmp_path / "out"

    # the parts' time limits are the device's budget, not what this test checks: on a loaded CI
    # machine they are stretched 20x (--time-scale), and the subprocess bound is for a broken test
    proc = _script("--device", "cpu", "--tiny", "--time-scale", "20", "--wheels", str(carried), "--parts", "profile,runs",
                   "--models", "copy-last,convlstm", str(out), timeout=7200)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]

    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.is_file() for p in out.iterdir())  # what the device tool returns
    assert {"summary.md", "device_check.log", "profile.csv", "profile.md", "runs.md", "results.tar.gz"} <= set(files)
    summary = (out / "summary.md").read_text()
    assert "| profile | ok |" in summary and "| runs | ok |" in summary and "| tests | not asked |" in summary
    assert "| copy-last | ok |" in summary and "| convlstm | finished | 4 x 2 |" in summary
    assert "| copy-last | ok |" in proc.stdout  # the summary is printed at the end too

    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
        assert not [n for n in names if "checkpoints" in n or n.endswith(".run.lock")]
        tar.extractall(tmp_path / "results", filter="data")
    run = tmp_path / "results" / "runs" / "convlstm-mmnist-cpu-smoke"
    record = read_record(run / "record.json")
    assert record.run_id == run.name and record.train.steps_done == 4
    assert record.hardware["device"] == "cpu" and record.data_info["test_set"] == "generated"
    assert "lpips" in record.metrics["openstl"]  # the carried AlexNet weights were found
    assert (run / "strips" / "test_00000.png").is_file()
    raw = (tmp_path / "results" / "profile" / "raw" / "profile-convlstm.txt").read_text()
    assert "--set model.hidden=8" in raw  # the tiny variant, from the registry
    rows = (out / "profile.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["convlstm", "copy-last"]
    assert json.loads((run / "record.json").read_text())["model"]["name"] == "convlstm"
