"""`vpbench bench`: suite files, their expansion, and the tiny glyphs suite on a real two-node
Ray cluster on 127.0.0.1 with the worker node killed mid-suite.

The cluster (`raycluster.py`) starts once for the module, only when a cluster test runs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from vpbench.bench import expand_suite, load_suite, parse_suite, resolved_config, run_state
from vpbench.cli import AppState, main
from vpbench.cli import bench as bench_cli
from vpbench.cli import leaderboard as leaderboard_cli
from vpbench.errors import ConfigError
from vpbench.plugins import get_plugin_manager
from vpbench.records import iter_records, read_record

try:
    from raycluster import Cluster, ConvLSTMGatePlugin, NodeLocalPlugin, cluster  # noqa: F401  (cluster: the fixture)
except pytest.skip.Exception:  # Ray is not installed: the suite tests above still run
    Cluster = None  # type: ignore[assignment,misc]

REPO = Path(__file__).resolve().parent.parent
SUITES = REPO / "configs" / "suites"
TINY = SUITES / "glyphs-tiny.yaml"


def _app() -> AppState:
    from conftest import TestPlugin

    return AppState(get_plugin_manager([TestPlugin()]))


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ----------------------------------------------------------------------------- suites (no Ray)


def test_a_suite_expands_to_models_x_datasets_x_seeds_with_overrides_in_order(tmp_path: Path, registry: Any) -> None:
    (tmp_path / "hidden.yaml").write_text("model: {hidden: 4}\ntrain: {lr: 0.002, max_steps: 7}\n")
    suite = _write(
        tmp_path / "s.yaml",
        {
            "datasets": ["glyphs"],
            "seeds": [3, 5],
            "set": {"train.max_steps": 9, "train.batch_size": 2},
            "entries": [
                {"model": "copy-last"},
                {"name": "tiny-h4", "model": "tinyconv", "config": "hidden.yaml", "set": {"train.batch_size": 3}, "seeds": [1]},
            ],
        },
    )
    runs = expand_suite(load_suite(suite), registry, str(suite), sets=["train.lr=0.01"], suite_dir=tmp_path)
    assert [r.key for r in runs] == ["glyphs/copy-last-seed-3", "glyphs/copy-last-seed-5", "glyphs/tiny-h4-seed-1"]
    tiny = runs[-1]
    assert tiny.run_dir(tmp_path / "out") == tmp_path / "out" / "glyphs" / "tiny-h4-seed-1"
    # config file < suite set < entry set < --set < seed
    assert tiny.overrides == {"model": {"hidden": 4}, "train": {"lr": 0.01, "max_steps": 9, "batch_size": 3}, "seed": 1}
    assert tiny.config_source == str(tmp_path / "hidden.yaml")
    assert runs[0].overrides["seed"] == 3 and runs[0].config_source is None


def test_every_shipped_suite_expands_and_validates(registry: Any) -> None:
    counts = {}
    for path in sorted(SUITES.glob("*.yaml")):
        runs = expand_suite(load_suite(path), registry, str(path), suite_dir=path.parent)
        counts[path.stem] = len(runs)
        assert len({r.key for r in runs}) == len(runs)
    assert counts["glyphs-tiny"] == 4
    assert {"table2-mmnist", "table2-kth", "table3-ablation"} <= set(counts)
    layers = {r.overrides["model"]["layers"] for r in expand_suite(load_suite(SUITES / "table3-ablation.yaml"), registry, "t3")}
    assert layers == {1, 3, 9}


@pytest.mark.parametrize(
    "data,message",
    [
        ({"datasets": ["glyphs"], "entries": [{"modle": "copy-last"}]}, "unknown key 'entries.0.modle'; valid keys here: model, name, config"),
        ({"datasets": ["glyphs"], "seed": [1], "entries": [{"model": "copy-last"}]}, "unknown key 'seed'; valid keys here: name, description, datasets, seeds"),
        ({"datasets": ["glyphs"], "entries": []}, "bad value for key 'entries'"),
        ({"entries": [{"model": "copy-last"}]}, "entry 'copy-last' has no datasets; list them under `datasets:`"),
        ({"datasets": ["glyphs"], "entries": [{"model": "copy-last"}, {"model": "copy-last"}]}, "entries share the name 'copy-last'; give each a distinct `name:`"),
        ({"datasets": ["glyphs"], "entries": [{"model": "copy-last", "name": "../x"}]}, "must be a plain name"),
        ({"datasets": ["glyphs"], "entries": [{"model": "tinyconv", "set": {"model.hiden": 4}}]}, "unknown config key 'model.hiden'"),
        ({"datasets": ["glyphs"], "entries": [{"model": "nosuch"}]}, "nosuch"),
        ({"datasets": ["glyphs"], "compare": ["nope"], "entries": [{"model": "copy-last"}]}, "unknown baseline 'nope' under compare:"),
    ],
    ids=["entry-key", "suite-key", "no-entries", "no-datasets", "same-name", "unsafe-name", "config-key", "unknown-model", "compare"],
)
def test_bad_suites_fail_in_one_line_before_anything_runs(tmp_path: Path, capsys: Any, data: dict[str, Any], message: str) -> None:
    from conftest import TestPlugin

    suite = _write(tmp_path / "bad.yaml", data)
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(suite), "--out", str(tmp_path / "out")], plugins=[TestPlugin()])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_folder_holding_another_config_is_refused(tmp_path: Path, registry: Any) -> None:
    suite = _write(tmp_path / "s.yaml", {"datasets": ["glyphs"], "entries": [{"model": "tinyconv", "set": {"model.hidden": 4}}]})
    (run,) = expand_suite(load_suite(suite), registry, str(suite))
    out = tmp_path / "out"
    assert run_state(run, out, registry) == "new"
    root = run.run_dir(out)
    root.mkdir(parents=True)
    config = resolved_config(registry, "tinyconv", "glyphs", run.overrides)
    spec = {"model": "tinyconv", "dataset": "glyphs", "config": {**config, "model": {**config["model"], "hidden": 8}}}
    (root / "run.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"holds a run with another config \(config.model.hidden is 8 there, 4 in the suite\)"):
        run_state(run, out, registry)


def test_a_budgeted_run_whose_plan_replaced_max_steps_is_still_its_own_run(tmp_path: Path, registry: Any) -> None:
    """A budgeted run writes the steps its plan bought as train.max_steps; a second `vpbench
    bench` (resuming after Ctrl-C, or skipping finished runs) refused the folder as another config."""
    suite = _write(tmp_path / "s.yaml", {"datasets": ["glyphs"], "set": {"train.budget": {"macs": 1e9}},
                                         "entries": [{"model": "tinyconv"}]})
    (run,) = expand_suite(load_suite(suite), registry, str(suite))
    root = run.run_dir(tmp_path / "out")
    root.mkdir(parents=True)
    config = resolved_config(registry, "tinyconv", "glyphs", run.overrides)
    planned = {**config, "train": {**config["train"], "max_steps": 37}}  # what the run wrote
    (root / "run.yaml").write_text(yaml.safe_dump({"model": "tinyconv", "dataset": "glyphs", "config": planned}))
    assert run_state(run, tmp_path / "out", registry) == "partial"
    changed = {**planned, "train": {**planned["train"], "budget": {"sequences": None, "macs": 2e9}}}
    (root / "run.yaml").write_text(yaml.safe_dump({"model": "tinyconv", "dataset": "glyphs", "config": changed}))
    with pytest.raises(ConfigError, match=r"config.train.budget.macs is 2000000000.0 there, 1000000000.0 in the suite"):
        run_state(run, tmp_path / "out", registry)


def test_a_committed_record_without_its_run_yaml_is_finished_when_it_is_that_run(tmp_path: Path, registry: Any) -> None:
    """A committed records tree keeps record.json, not run.yaml: re-running the track's command
    on it runs only what is missing, and a record of another run is refused by what differs."""
    import shutil

    track = Path(__file__).resolve().parent.parent / "configs" / "suites" / "track-glyphs-cpu.yaml"
    committed = track.parent.parent.parent / "leaderboards" / "records" / "track-glyphs-cpu" / "glyphs" / "convlstm-seed-0"
    runs = {r.name: r for r in expand_suite(load_suite(track), registry, str(track), suite_dir=track.parent)}
    out = tmp_path / "out"
    shutil.copytree(committed, runs["convlstm-seed-0"].run_dir(out))
    assert run_state(runs["convlstm-seed-0"], out, registry) == "finished"
    assert run_state(runs["convlstm-seed-1"], out, registry) == "new"
    shutil.copytree(committed, runs["predrnn-seed-0"].run_dir(out))
    with pytest.raises(ConfigError, match=r"predrnn-seed-0 holds the record of another run \(model is 'convlstm' there, 'predrnn' in the suite\)"):
        run_state(runs["predrnn-seed-0"], out, registry)
    shutil.copytree(committed, runs["convlstm-seed-1"].run_dir(out))
    with pytest.raises(ConfigError, match=r"seed is 0 there, 1 in the suite"):
        run_state(runs["convlstm-seed-1"], out, registry)


def test_a_second_command_on_the_same_output_folder_is_refused(tmp_path: Path, capsys: Any) -> None:
    from vpbench.engine.rundir import run_lock

    out = tmp_path / "out"
    with run_lock(out):  # another `vpbench bench` holds it
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", str(TINY), "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"run directory {out} is in use by another vpbench process (PID {os.getpid()})" in err, err


def test_help_explains_suites_resources_and_resume() -> None:
    text = CliRunner().invoke(bench_cli.command, ["--help"]).output
    for words in ("SUITE", "--gpus-per-run", "--cpus-per-run", "--address", "--retries", "--dry-run", "skips finished", "mean ± std"):
        assert words in text, words


def test_parse_suite_reads_a_mapping() -> None:
    suite = parse_suite({"datasets": ["glyphs"], "entries": [{"model": "copy-last"}]}, "inline")
    assert suite.seeds == [0] and suite.entries[0].label == "copy-last"


# ----------------------------------------------------------------------------- on a Ray cluster


needs_ray = pytest.mark.skipif(Cluster is None, reason="Ray is not installed (pip install 'vpbench[tune]')")


def _wait(condition: Any, what: str, timeout: float = 300) -> None:
    """Poll for a state the test needs; ``timeout`` only bounds a broken test."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(bench_cli.command, args, obj=_app(), catch_exceptions=False)


@needs_ray
@pytest.mark.cluster
def test_tiny_suite_survives_losing_a_node_skips_finished_runs_and_gives_mean_std_rows(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the shipped tiny suite, its ConvLSTM runs on the gated ConvLSTM (same configuration) that
    # waits before step 25 (after sending step 20's checkpoint) until the test opens the gate
    from conftest import TestPlugin, at_gate

    gate = tmp_path / "gate"
    shipped = yaml.safe_load(TINY.read_text())
    (convlstm,) = [e for e in shipped["entries"] if e["model"] == "convlstm"]
    convlstm.update(model="convlstm-gated", config="convlstm-glyphs.yaml")
    convlstm["set"].update({"model.gate": str(gate), "model.gate_step": 25})
    suite = _write(tmp_path / "glyphs-tiny.yaml", shipped)
    out, data = tmp_path / "bench", tmp_path / "data"
    args = [str(suite), "--address", cluster.address, "--out", str(out), "--data-root", str(data), "--quiet"]
    app = AppState(get_plugin_manager([TestPlugin(), ConvLSTMGatePlugin()]))
    invoke = lambda: CliRunner().invoke(bench_cli.command, args, obj=app, catch_exceptions=False)  # noqa: E731
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", invoke()), daemon=True)
    thread.start()
    # both ConvLSTM runs (one per node: one CPU each) wait at the gate and the driver has stored
    # their step-20 checkpoints: kill the worker node under one of them, then let them go on
    runs = [out / "glyphs" / f"convlstm-tiny-seed-{s}" for s in (0, 1)]

    def stored(run: Path) -> int:
        state = run / "bench-state.json"  # written by rename: never half-written
        return int(json.loads(state.read_text())["step"]) if state.is_file() else -1

    _wait(lambda: (at_gate(gate) >= 2 and all(stored(r) == 20 for r in runs)) or not thread.is_alive(),
          "both ConvLSTM runs at their gate with step 20 stored")
    assert thread.is_alive(), box.get("result") and box["result"].output
    cluster.kill("worker")
    gate.with_name(f"{gate.name}.open").touch()
    thread.join(timeout=600)  # a bound for a broken test, not a wait
    assert not thread.is_alive(), "the suite did not finish after the worker node died"
    result = box["result"]
    print(result.output)  # shown with -s or on failure: the suite's progress and its table
    assert result.exit_code == 0, result.output
    output = result.output
    assert "4 finished, 0 skipped (finished before), 0 failed" in output
    assert "retrying from its last checkpoint" in output
    resumed = [int(line.split("resuming from step ")[1].split(")")[0]) for line in output.splitlines() if "resuming from step" in line]
    assert resumed == [20], output  # from the last checkpoint it sent, not step 0: no step lost
    records = {p.parent.name: r for p, r in iter_records(out)}
    assert sorted(records) == ["convlstm-tiny-seed-0", "convlstm-tiny-seed-1", "copy-last-seed-0", "copy-last-seed-1"]
    assert all(not isinstance(r, Exception) for r in records.values())
    assert {records[f"convlstm-tiny-seed-{s}"].train.steps_done for s in (0, 1)} == {60}  # type: ignore[union-attr]
    assert [records[f"copy-last-seed-{s}"].seed for s in (0, 1)] == [0, 1]  # type: ignore[union-attr]
    assert not list(out.rglob("bench-state.json"))  # finished runs hold the finished directory only
    assert (data / ".prepare-glyphs.lock").exists()  # each task prepared its data under the lock

    # a rerun skips everything finished: nothing is submitted, no record is rewritten
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("record.json")}
    again = invoke()
    assert again.exit_code == 0, again.output
    assert "4 finished before (skipped), 0 to resume, 0 to start" in again.output and "start glyphs/" not in again.output
    assert {p: p.stat().st_mtime_ns for p in out.rglob("record.json")} == stamps

    # the output folder is a records tree: the leaderboard reads it as it is
    site = tmp_path / "site"
    board = CliRunner().invoke(leaderboard_cli.command, ["--records", str(out), "--out", str(site), "--no-figures"], obj=_app())
    assert board.exit_code == 0, board.output
    page = (site / "glyphs.md").read_text()
    print("\n".join(line for line in page.splitlines() if line.startswith("|")))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in page.splitlines() if line.startswith("| convlstm") or line.startswith("| copy-last")}
    assert set(rows) == {"convlstm-gated", "copy-last"}, page
    for row in rows.values():
        assert row[2] == "2" and all(" ± " in cell for cell in row[3:7]), row  # n, then PSNR SSIM MSE MAE as mean ± std


@needs_ray
@pytest.mark.cluster
def test_a_failing_run_is_reported_and_the_command_exits_non_zero(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = _write(
        tmp_path / "diverges.yaml",
        {
            "datasets": ["glyphs"],
            "set": {"dataset.train_length": 8, "dataset.val_length": 4, "dataset.test_length": 4, "train.batch_size": 4,
                    "train.max_steps": 4, "train.eval_every": 2, "train.val_sequences": 4, "eval.metrics": ["mse"],
                    "eval.profile": False, "train.select_metric": "mse"},
            "compare": [],
            "entries": [{"name": "diverges", "model": "tinyconv", "set": {"model.noise": 1.0e39}}, {"model": "copy-last"}],
        },
    )
    out = tmp_path / "out"
    result = _invoke([str(suite), "--address", cluster.address, "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "FAILED glyphs/diverges-seed-0 after 1 attempt(s): loss became nan" in result.output
    assert "1 finished, 0 skipped (finished before), 1 failed" in result.output
    assert "failed: glyphs/diverges-seed-0: loss became nan" in result.stderr
    assert read_record(out / "glyphs" / "copy-last-seed-0" / "record.json").model.name == "copy-last"
    assert not (out / "glyphs" / "diverges-seed-0" / "record.json").exists()


@needs_ray
@pytest.mark.cluster
def test_each_run_prepares_its_data_on_its_node_first(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing prepared the data root before the suite: each task prepares it under the lock."""
    from conftest import TestPlugin

    suite = _write(tmp_path / "s.yaml", {"datasets": ["nodeglyphs"], "set": {"dataset.test_length": 4, "eval.metrics": ["mse"],
                                                                            "eval.profile": False}, "compare": [],
                                         "entries": [{"model": "copy-last"}]})
    data = tmp_path / "fresh-data-root"
    args = [str(suite), "--address", cluster.address, "--out", str(tmp_path / "out"), "--data-root", str(data), "--quiet"]
    result = CliRunner().invoke(bench_cli.command, args, obj=AppState(get_plugin_manager([TestPlugin(), NodeLocalPlugin()])), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (data / "nodes" / "default" / "nodeglyphs.ready").is_file() and (data / ".prepare-nodeglyphs.lock").exists()
    assert read_record(tmp_path / "out" / "nodeglyphs" / "copy-last-seed-0" / "record.json").dataset.name == "nodeglyphs"


def tiny_suite(path: Path, runs: int) -> Path:
    """A suite of ``runs`` tiny tinyconv runs (seeds 0..runs-1): two validation passes each,
    so every run sends two states and its finished directory back through the transport."""
    return _write(
        path,
        {
            "name": path.stem,
            "datasets": ["glyphs"],
            "seeds": list(range(runs)),
            "set": {"dataset.train_length": 8, "dataset.val_length": 4, "dataset.test_length": 4, "train.batch_size": 4,
                    "train.max_steps": 4, "train.eval_every": 2, "train.val_sequences": 4, "eval.metrics": ["mse"],
                    "eval.protocols": ["openstl"], "eval.profile": False, "train.select_metric": "mse"},
            "compare": [],
            "entries": [{"name": "tiny", "model": "tinyconv"}],
        },
    )


@needs_ray
@pytest.mark.cluster
def test_the_drivers_memory_does_not_grow_with_the_number_of_runs(cluster: Cluster, tmp_path: Path) -> None:
    """Every run's states and results pass through the driver: its peak (Python) memory while
    driving 16 runs stays that of driving 4 (benchmarks/bench_scale.py does 20 and 200 runs)."""
    import tracemalloc

    peaks = {}
    for runs in (4, 16):
        out = tmp_path / f"out-{runs}"
        args = [str(tiny_suite(tmp_path / f"many-{runs}.yaml", runs)), "--address", cluster.address, "--out", str(out), "--quiet"]
        tracemalloc.start()
        try:
            result = _invoke(args)
            peaks[runs] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.exit_code == 0, result.output
        assert f"{runs} finished, 0 skipped (finished before), 0 failed" in result.output
        assert len(list(out.rglob("record.json"))) == runs and not list(out.rglob("bench-state.json"))
    print(f"driver peak traced memory: 4 runs {peaks[4] / 1e6:.2f} MB, 16 runs {peaks[16] / 1e6:.2f} MB")
    assert peaks[16] < 1.2 * peaks[4], peaks  # flat (measured 1.26 MB and 1.29 MB), not 4x
