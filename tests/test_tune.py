"""`vpbench tune` and `vpbench run --address` on a real two-node Ray cluster on 127.0.0.1.

The cluster (`raycluster.py`: a head and a worker node, one CPU each) is
started once for the module and always torn down: every process of both nodes is killed
by its session id. Trials train the test-only ``tinyconv`` model; its plugin object travels
to the workers, which import ``conftest`` through PYTHONPATH.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from vpbench.cli import AppState
from vpbench.cli import run as run_cli
from vpbench.cli import tune as tune_cli
from vpbench.plugins import get_plugin_manager
from vpbench.records import iter_records, read_record
from vpbench.tune import SearchResult, TuneRequest, run_search

from raycluster import Cluster, cluster  # noqa: F401  (cluster: the fixture)

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.cluster

TINY = [
    "dataset.train_length=32",
    "dataset.val_length=4",
    "dataset.test_length=4",
    "train.batch_size=4",
    "train.val_sequences=4",
    "eval.metrics=[mse,psnr]",
    "eval.protocols=[openstl]",
    "train.select_metric=mse",
]


def _app() -> AppState:
    from conftest import TestPlugin

    return AppState(get_plugin_manager([TestPlugin()]))


def _search_file(path: Path, steps: int, every: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "fixed": {"train.max_steps": steps, "train.eval_every": every},
                "space": {"train.lr": {"grid": [1e-3, 3e-3]}, "model.hidden": {"choice": [4, 8]}},
            }
        )
    )
    return path


def test_tiny_search_on_two_nodes_writes_records_and_a_best_config(cluster: Cluster, tmp_path: Path) -> None:
    search = _search_file(tmp_path / "search.yaml", steps=4, every=2)
    out = tmp_path / "search-out"
    args = ["--model", "tinyconv", "--dataset", "glyphs", "--search", str(search), "--num-samples", "1"]
    args += ["--scheduler", "fifo", "--address", cluster.address, "--out", str(out), "--quiet"]
    args += [f"--set={s}" for s in TINY]
    result = CliRunner().invoke(tune_cli.command, args, obj=_app(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "data glyphs ready on 2 node(s)" in result.output
    assert "val_mse ↓" in result.output and "best config:" in result.output

    # every trial's record is where the leaderboard looks, and only there (Ray's storage holds tars)
    records = {path.parent.name: rec for path, rec in iter_records(out)}
    assert len(records) == 2 and all(not isinstance(r, Exception) for r in records.values())
    assert {r.train.steps_done for r in records.values()} == {4}  # type: ignore[union-attr]
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted(r["trial"] for r in rows) == sorted(records) and {r["status"] for r in rows} == {"finished"}
    assert sorted(float(r["train.lr"]) for r in rows) == [1e-3, 3e-3]
    best_val = min(float(r["val_mse"]) for r in rows)
    assert float(rows[0]["val_mse"]) == best_val  # the table lists the best first (mse: lower is better)

    # the best config is accepted by `vpbench run --config` as it is
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["train"]["lr"] == float(rows[0]["train.lr"]) and best["model"]["hidden"] == int(rows[0]["model.hidden"])
    run = CliRunner().invoke(
        run_cli.command,
        ["--model", "tinyconv", "--dataset", "glyphs", "--config", str(out / "best.yaml"), "--out", str(tmp_path / "rerun"), "--no-progress", "--compare", "none"],
        obj=_app(),
        catch_exceptions=False,
    )
    assert run.exit_code == 0, run.output
    assert read_record(tmp_path / "rerun" / "record.json").train.config["lr"] == best["train"]["lr"]

    # --resume restores the finished experiment: nothing reruns, no record is lost or rewritten
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/record.json")}
    again = CliRunner().invoke(tune_cli.command, ["--resume", "--out", str(out), "--address", cluster.address, "--quiet"], obj=_app(), catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in out.glob("trials/*/record.json")} == stamps


def test_run_with_address_brings_the_run_directory_back(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "remote-run"
    args = ["--model", "tinyconv", "--dataset", "glyphs", "--address", cluster.address, "--out", str(out), "--no-progress"]
    args += ["--set=train.max_steps=2", "--set=train.eval_every=2", *[f"--set={s}" for s in TINY]]
    result = CliRunner().invoke(run_cli.command, args, obj=_app(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "copied to" in result.output
    record = read_record(out / "record.json")
    assert record.model.name == "tinyconv" and record.train.steps_done == 2 and record.run_id == "remote-run"
    assert (out / "run.yaml").is_file() and (out / "checkpoints" / "best.pt").is_file() and list((out / "strips").glob("*.png"))


def _steps(progress: Path) -> list[int]:
    return [int(float(row["step"])) for row in csv.DictReader(progress.open()) if row.get("step")]


def test_search_survives_losing_the_worker_node(cluster: Cluster, tmp_path: Path) -> None:
    search = _search_file(tmp_path / "search.yaml", steps=60, every=4)
    out = tmp_path / "killed"
    req = TuneRequest(
        model="tinyconv",
        dataset="glyphs",
        search=search,
        sets=TINY,
        scheduler="fifo",
        address=cluster.address,
        max_failures=3,
        out=out,
        quiet=True,
    )
    box: dict[str, Any] = {}

    def search_thread() -> None:
        try:
            box["result"] = run_search(req, _app().registry, echo=lambda _: None)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            box["error"] = exc

    thread = threading.Thread(target=search_thread, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    # both trials (one per node) have checkpointed: kill the worker node under one of them
    while len({p.parent.name for p in out.glob("ray/search/*/checkpoint_*")}) < 2:
        assert thread.is_alive() and time.monotonic() < deadline, box
        time.sleep(0.2)
    cluster.kill("worker")
    thread.join(timeout=180)
    assert not thread.is_alive(), "the search did not finish after the worker node died"
    assert "error" not in box, box.get("error")
    result: SearchResult = box["result"]

    assert [t.status for t in result.trials] == ["finished", "finished"], [(t.trial_id, t.error) for t in result.trials]
    records = [rec for _, rec in iter_records(out / "trials")]
    assert len(records) == 2 and all(r.train.steps_done == 60 for r in records)  # type: ignore[union-attr]
    # the trial that lost its node restarted from its last checkpoint, not from step 0:
    # its reported steps repeat the checkpointed step and never go back
    histories = [_steps(p) for p in out.glob("ray/search/*/progress.csv")]
    restarted = [h for h in histories if len(h) != len(set(h))]
    assert restarted, histories
    assert all(h == sorted(h) for h in histories), histories
