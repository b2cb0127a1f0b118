"""`vpbench tune` and `vpbench run --address` on a real two-node Ray cluster on 127.0.0.1.

The cluster (`raycluster.py`: a head and a worker node, one CPU each) is
started once for the module and always torn down: every process of every node is killed
by its session id. Ctrl-C is a real SIGINT to a `vpbench` process (the console entry point
plus the test plugins); a lost worker is a real SIGKILL of the worker process or node; the
late node is a real third node started while a search waits for resources. Trials train the test-only ``tinyconv`` model; its plugin object travels
to the workers, which import ``conftest`` through PYTHONPATH.
"""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import Field
from torch import Tensor

import vpbench
from conftest import TinyConv, at_gate, wait_at_gate

from vpbench.cli import AppState
from vpbench.cli import run as run_cli
from vpbench.cli import tune as tune_cli
from vpbench.plugins import get_plugin_manager
from vpbench.records import iter_records, read_record
from vpbench.tune import SearchResult, TuneRequest, run_search

from raycluster import _LOOPBACK, NODE_ENV, TESTS, Cluster, NodeLocalPlugin, alive_nodes, cluster  # noqa: F401  (cluster: the fixture)

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


class GatedTinyConv(TinyConv):
    """tinyconv that stops before step ``gate_step``, on whichever node it trains, until the test
    opens the gate (:func:`conftest.wait_at_gate`)."""

    class Config(TinyConv.Config):
        gate: str = Field("", description="path prefix of the gate files ('': no gate)")
        gate_step: int = Field(-1, description="the step that waits at the gate")

    def _step(self, batch: Tensor, step: int) -> Any:
        cfg = self.config
        assert isinstance(cfg, GatedTinyConv.Config)
        if cfg.gate and step == cfg.gate_step:
            wait_at_gate(cfg.gate)
        return super()._step(batch, step)


class GatePlugin:
    @vpbench.hookimpl
    def register_models(self, register: Any) -> None:
        register(vpbench.ModelSpec(name="tinyconv-gated", target="test_tune:GatedTinyConv", description="test-only gated tinyconv"))


def _app() -> AppState:
    from conftest import TestPlugin

    return AppState(get_plugin_manager([TestPlugin(), NodeLocalPlugin(), GatePlugin()]))


def _search_file(path: Path, steps: int, every: int, space: dict[str, Any] | None = None, **tune: Any) -> Path:
    space = space or {"train.lr": {"grid": [1e-3, 3e-3]}, "model.hidden": {"choice": [4, 8]}}
    data: dict[str, Any] = {"fixed": {"train.max_steps": steps, "train.eval_every": every}, "space": space}
    if tune:
        data["tune"] = tune
    path.write_text(yaml.safe_dump(data))
    return path


#: a real `vpbench` process (the console script's main) that also registers the test plugins
#: and, like the cluster's nodes, keeps Ray on loopback
_DRIVER = (
    f"{_LOOPBACK}; import sys; from conftest import TestPlugin; from test_tune import GatePlugin; "
    "from vpbench.cli import main; main(sys.argv[1:], [TestPlugin(), GatePlugin()])"
)


def _driver(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.Popen(
        [sys.executable, "-c", _DRIVER, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(condition: Any, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


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
    args += ["--cpus", "1", "--gpus", "0", "--device", "auto", "--set=train.max_steps=2", "--set=train.eval_every=2", *[f"--set={s}" for s in TINY]]
    result = CliRunner().invoke(run_cli.command, args, obj=_app(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "copied to" in result.output and "(1 CPU, 0 GPU, cpu)" in result.output
    record = read_record(out / "record.json")
    assert record.model.name == "tinyconv" and record.train.steps_done == 2 and record.run_id == "remote-run"
    assert (out / "run.yaml").is_file() and (out / "checkpoints" / "best.pt").is_file() and list((out / "strips").glob("*.png"))


def test_asha_stops_at_a_step_rung_and_the_stopped_trial_is_tested_on_a_trial_worker(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one trial at a time: the first (clean inputs) sets the rung; the second, trained on very
    # noisy inputs, is worse there (val_mse 273.3 vs 267.9 at step 2) and ASHA stops it at the
    # grace period, counted in training steps
    search = _search_file(tmp_path / "search.yaml", steps=6, every=2, space={"model.noise": {"grid": [0.0, 5.0]}})
    out = tmp_path / "asha"
    args = ["--model", "tinyconv", "--dataset", "glyphs", "--search", str(search), "--address", cluster.address]
    args += ["--scheduler", "asha", "--grace-period", "2", "--reduction-factor", "2", "--max-concurrent", "1"]
    args += ["--out", str(out), "--quiet", *[f"--set={s}" for s in TINY]]

    # the stopped trial is tested by a Ray task with the trial's resources, never in this process
    import vpbench.engine.run as engine_run

    def not_on_the_driver(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a trial was tested on the driver")

    monkeypatch.setattr(engine_run, "execute_run", not_on_the_driver)
    result = CliRunner().invoke(tune_cli.command, args, obj=_app(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {float(r["model.noise"]): r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows[0.0]["status"] == "finished" and rows[5.0]["status"] == "stopped", rows
    assert rows[5.0]["steps"] == "2"
    stopped = read_record(out / "trials" / rows[5.0]["trial"] / "record.json")
    assert stopped.train.steps_done == 2 and stopped.argv[-2:] == ["--stopped-at", "2"]
    # the record names the validation the tested weights (best.pt) come from
    import torch

    best = torch.load(out / "trials" / rows[5.0]["trial"] / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)
    assert stopped.train.selected_step == best["step"] == 2 and stopped.train.select_value is not None
    assert read_record(out / "trials" / rows[0.0]["trial"] / "record.json").train.steps_done == 6
    assert "testing 1 stopped trial(s) at their last checkpoint, with each trial's resources" in result.output


def test_sigint_stops_the_search_without_a_best_config_and_resume_finishes_every_trial(cluster: Cluster, tmp_path: Path) -> None:
    # the trials wait before step 10 (after reporting step 8) until the test opens the gate: the
    # SIGINT certainly lands on a running search. The gate opens once Ray Tune has taken the
    # signal (its handler says so on stderr), so that the trials it stops are not held at the gate
    # (Ray would wait up to TUNE_FORCE_TRIAL_CLEANUP_S, 10 minutes, for them to come back)
    # --out is relative (as the default and the printed hint are): the driver runs in tmp_path
    search = _search_file(tmp_path / "search.yaml", steps=24, every=4)
    out, gate = tmp_path / "interrupted", tmp_path / "gate"
    args = ["tune", "--model", "tinyconv-gated", "--dataset", "glyphs", "--search", str(search), "--scheduler", "fifo"]
    args += ["--address", cluster.address, "--out", "interrupted", "--quiet", f"--set=model.gate={gate}", "--set=model.gate_step=10"]
    args += [f"--set={s}" for s in TINY]
    driver = _driver(args, tmp_path)
    errors: list[str] = []
    assert driver.stderr is not None and driver.stdout is not None

    def read_errors() -> None:
        for line in driver.stderr:  # type: ignore[union-attr]
            errors.append(line)

    readers = [threading.Thread(target=read_errors, daemon=True), threading.Thread(target=driver.stdout.read, daemon=True)]
    for reader in readers:
        reader.start()
    try:
        running = lambda: at_gate(gate) and list(out.glob("ray/search/*/checkpoint_*"))  # noqa: E731
        _wait_for(lambda: running() or driver.poll() is not None, "a trial with a checkpoint at its gate")
        assert driver.poll() is None, "".join(errors)
        driver.send_signal(signal.SIGINT)
        taken = lambda: any("Stop signal received" in line for line in errors)  # noqa: E731
        _wait_for(lambda: taken() or driver.poll() is not None, "Ray Tune to take the SIGINT")
        gate.with_name(f"{gate.name}.open").touch()
        driver.wait(timeout=600)  # a bound for a broken test, not a wait
        for reader in readers:
            reader.join(timeout=600)
    finally:
        driver.kill()
    err = "".join(errors)
    assert driver.returncode == 130, err
    hint = err.split("continue with: ", 1)[1].splitlines()[0]
    assert hint == f"vpbench tune --resume --out interrupted --address {cluster.address}", err
    assert not (out / "best.yaml").exists()
    assert not any("--stopped-at" in r.argv for _, r in iter_records(out))  # type: ignore[union-attr]

    # the printed hint, run verbatim (a real `vpbench` process in the same folder)
    program, *hint_args = shlex.split(hint)
    assert program == "vpbench"
    again = _driver(hint_args, tmp_path)
    _, again_err = again.communicate(timeout=600)  # a bound for a broken test, not a wait
    assert again.returncode == 0, again_err
    records = [rec for _, rec in iter_records(out / "trials")]
    assert len(records) == 2 and all(r.train.steps_done == 24 and "--stopped-at" not in r.argv for r in records)  # type: ignore[union-attr]
    assert {r["status"] for r in csv.DictReader((out / "summary.csv").open())} == {"finished"}
    assert (out / "best.yaml").is_file()


def test_run_with_address_survives_a_killed_worker_and_ctrl_c_brings_the_run_back(cluster: Cluster, tmp_path: Path) -> None:
    from vpbench.engine.run import RunRequest
    from vpbench.tune import submit_run

    # the first attempt waits before step 6 (after sending step 4's state) until the worker is killed
    gate = tmp_path / "gate"
    sets = ["train.max_steps=120", "train.eval_every=4", f"model.gate={gate}", "model.gate_step=6", *TINY]
    req = RunRequest(model="tinyconv-gated", dataset="glyphs", sets=sets, out=tmp_path / "retried", progress=False, compare=())
    lines: list[str] = []
    box: dict[str, Any] = {}

    def submit() -> None:
        try:
            box["result"] = submit_run(req, _app().registry, cluster.address, echo=lines.append, max_retries=2)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            box["error"] = exc

    thread = threading.Thread(target=submit, daemon=True)
    thread.start()
    received = lambda: any("received from" in line for line in lines)  # noqa: E731
    _wait_for(lambda: (received() and at_gate(gate)) or not thread.is_alive(), "the first state")
    assert thread.is_alive(), (box, lines)
    first = next(line for line in lines if "received from" in line)
    os.kill(int(first.rsplit("worker pid ", 1)[1]), signal.SIGKILL)  # the task's worker process dies
    Path(f"{gate}.open").touch()  # the retry goes through
    thread.join(timeout=600)  # a bound for a broken test, not a wait
    assert "error" not in box and "result" in box, (box, lines)
    record, run_dir = box["result"]
    assert record.train.steps_done == 120 and (run_dir / "checkpoints" / "best.pt").is_file()
    retries = [line for line in lines if line.startswith("worker lost")]
    assert len(retries) == 1 and "retry 1/2 from step " in retries[0], lines
    # the second attempt went on from the last state received (step 4: the first attempt waited
    # at step 6): no step was trained (and reported) twice, none was lost
    restart = int(retries[0].rsplit(" ", 1)[1])
    steps = [int(line.split()[3]) for line in lines if "received from" in line]
    assert steps == list(range(4, 121, 4)) and restart == 4, lines
    after = lines[lines.index(retries[0]) + 1]
    assert f"checkpoint at step {restart + 4} received from" in after and first.rsplit(" ", 1)[1] not in after, lines

    # Ctrl-C on a real driver process: the last state comes back as a resumable run directory;
    # the run waits at step 50 (after sending step 40's state) until the signal has done its work
    out, gate = tmp_path / "ctrl-c", tmp_path / "ctrl-c-gate"
    args = ["run", "--model", "tinyconv-gated", "--dataset", "glyphs", "--address", cluster.address, "--out", str(out), "--no-progress"]
    args += ["--compare", "none", "--set=train.max_steps=200", "--set=train.eval_every=40", f"--set=model.gate={gate}"]
    args += ["--set=model.gate_step=50", *[f"--set={s}" for s in TINY]]
    driver = _driver(args, tmp_path)
    try:
        assert driver.stdout is not None
        for line in driver.stdout:
            if "received from" in line:
                break
        _wait_for(lambda: at_gate(gate) or driver.poll() is not None, "the run at its gate")
        assert driver.poll() is None, driver.communicate()
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=600)  # a bound for a broken test, not a wait
    finally:
        driver.kill()
    assert driver.returncode == 130, err
    assert f"continue with: vpbench run --resume --out {out}" in err
    assert (out / "run.yaml").is_file() and (out / "checkpoints" / "last.pt").is_file() and not (out / "record.json").exists()
    Path(f"{gate}.open").touch()  # the resumed run goes through step 50
    resumed = CliRunner().invoke(
        run_cli.command, ["--resume", "--out", str(out), "--no-progress", "--compare", "none"], obj=_app(), catch_exceptions=False
    )
    assert resumed.exit_code == 0, resumed.output
    assert "(resumed)" in resumed.output and read_record(out / "record.json").train.steps_done == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_run_address_driver_stopped_mid_run_resumes_to_the_uninterrupted_result_bitwise(cluster: Cluster, tmp_path: Path, sig: int) -> None:
    import torch

    # the same run twice: once straight through, once with its driver stopped at a gate before
    # step 20 (after step 16's state arrived), then the printed (or the documented) resume
    # command, run verbatim in the same folder with a relative --out
    common = ["run", "--model", "tinyconv-gated", "--dataset", "glyphs", "--address", cluster.address, "--no-progress", "--compare", "none"]
    common += ["--set=train.max_steps=32", "--set=train.eval_every=8", "--set=model.gate_step=20", *[f"--set={s}" for s in TINY]]
    gate = tmp_path / "gate"
    straight = _driver([*common, "--out", "straight", f"--set=model.gate={tmp_path / 'open-gate'}"], tmp_path)
    Path(f"{tmp_path / 'open-gate'}.open").touch()
    _, err = straight.communicate(timeout=600)  # a bound for a broken test, not a wait
    assert straight.returncode == 0, err

    driver = _driver([*common, "--out", "stopped", f"--set=model.gate={gate}"], tmp_path)
    try:
        assert driver.stdout is not None
        for line in driver.stdout:
            if "checkpoint at step 16 received from" in line:
                break
        _wait_for(lambda: at_gate(gate) or driver.poll() is not None, "the run at its gate")
        assert driver.poll() is None, driver.communicate()
        driver.send_signal(sig)
        _, err = driver.communicate(timeout=600)  # a bound for a broken test, not a wait
    finally:
        driver.kill()
    stopped = tmp_path / "stopped"
    # the state of step 16 was on disk as soon as it arrived: even a SIGKILL leaves it there
    assert (stopped / "run.yaml").is_file() and (stopped / "checkpoints" / "last.pt").is_file() and not (stopped / "record.json").exists()
    hint = f"vpbench run --resume --out stopped --address {cluster.address}"
    if sig == signal.SIGTERM:  # a clean stop: exit status 130 and the command to continue
        assert driver.returncode == 130 and f"continue with: {hint}" in err, err
    Path(f"{gate}.open").touch()
    program, *args = shlex.split(hint)
    resumed = _driver([*args, "--no-progress", "--compare", "none"], tmp_path)
    _, err = resumed.communicate(timeout=600)  # a bound for a broken test, not a wait
    assert resumed.returncode == 0, err

    a, b = read_record(tmp_path / "straight" / "record.json"), read_record(stopped / "record.json")
    assert b.train.steps_done == a.train.steps_done == 32
    assert (a.train.attempts, b.train.attempts) == (1, 2)  # the record counts the driver's stop
    assert (b.train.selected_step, b.train.select_value, b.train.history) == (a.train.selected_step, a.train.select_value, a.train.history)
    assert {p: {k: r.mean for k, r in m.items()} for p, m in b.metrics.items()} == {p: {k: r.mean for k, r in m.items()} for p, m in a.metrics.items()}
    for name in ("best.pt", "last.pt"):
        sa = torch.load(tmp_path / "straight" / "checkpoints" / name, map_location="cpu", weights_only=False)["state_dict"]
        sb = torch.load(stopped / "checkpoints" / name, map_location="cpu", weights_only=False)["state_dict"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name


def _steps(progress: Path) -> list[tuple[int, int]]:
    """(iterations since the trial's last restore, step) of every report in a progress.csv."""
    rows = csv.DictReader(progress.open())
    return [(int(r["iterations_since_restore"]), int(float(r["step"]))) for r in rows if r.get("step")]


def test_search_survives_losing_the_worker_node(cluster: Cluster, tmp_path: Path) -> None:
    # the trials wait before step 10 (after reporting steps 4 and 8) until the test opens the gate
    search = _search_file(tmp_path / "search.yaml", steps=60, every=4)
    out, gate = tmp_path / "killed", tmp_path / "gate"
    req = TuneRequest(
        model="tinyconv-gated",
        dataset="glyphs",
        search=search,
        sets=[*TINY, f"model.gate={gate}", "model.gate_step=10"],
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

    # both trials (one per node) wait at the gate and the driver has recorded two reports of
    # each, so it has registered at least their first checkpoints: kill the worker node under one
    # of them, then let them go on
    def reported_twice() -> bool:
        try:
            histories = [_steps(p) for p in out.glob("ray/search/*/progress.csv")]
        except (ValueError, KeyError):  # a row being written
            return False
        return len(histories) == 2 and all(len(h) >= 2 for h in histories)

    _wait_for(lambda: (at_gate(gate) >= 2 and reported_twice()) or not thread.is_alive(), "both trials at their gate, reported twice")
    assert thread.is_alive(), box
    cluster.kill("worker")
    gate.with_name(f"{gate.name}.open").touch()
    thread.join(timeout=600)  # a bound for a broken test, not a wait
    assert not thread.is_alive(), "the search did not finish after the worker node died"
    assert "error" not in box, box.get("error")
    result: SearchResult = box["result"]

    assert [t.status for t in result.trials] == ["finished", "finished"], [(t.trial_id, t.error) for t in result.trials]
    records = [rec for _, rec in iter_records(out / "trials")]
    assert len(records) == 2 and all(r.train.steps_done == 60 for r in records)  # type: ignore[union-attr]
    # the trial that lost its node restarted (its count of reports since a restore starts
    # again at 1) from its last checkpoint, not from step 0, and never reported a step twice:
    # the scheduler compares every trial at the same steps
    histories = [_steps(p) for p in out.glob("ray/search/*/progress.csv")]
    restarted = [h for h in histories if [i for i, _ in h].count(1) > 1]
    assert restarted, histories
    for h in histories:
        steps = [s for _, s in h]
        assert steps == sorted(set(steps)), histories


def test_a_node_that_joins_after_the_start_prepares_its_own_data(cluster: Cluster, tmp_path: Path) -> None:
    """The driver prepared the data on the nodes alive at the start; the trial runs on a node
    that joined later, whose disk has no data: it prepares them there before its first step.
    The search also runs Optuna's model-based searcher, set in the search file's tune section."""
    cluster.kill("worker")  # only the head is left ...
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        _wait_for(lambda: alive_nodes() == 1, "the worker node to be gone")

        @ray.remote(num_cpus=1)
        class Busy:  # ... and its only CPU is taken, so the trial waits for a new node
            def ping(self) -> int:
                return 1

        busy = Busy.remote()  # type: ignore[attr-defined]
        ray.get(busy.ping.remote())
        space = {"train.lr": {"loguniform": [1e-3, 3e-3]}}
        search = _search_file(tmp_path / "search.yaml", steps=4, every=2, space=space, searcher="optuna", scheduler="fifo", seed=0)
        out = tmp_path / "late"
        req = TuneRequest(model="tinyconv", dataset="nodeglyphs", search=search, sets=TINY, address=cluster.address, max_failures=0, out=out, quiet=True)
        lines: list[str] = []
        box: dict[str, Any] = {}

        def search_thread() -> None:
            try:
                box["result"] = run_search(req, _app().registry, echo=lines.append)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                box["error"] = exc

        thread = threading.Thread(target=search_thread, daemon=True)
        thread.start()
        _wait_for(lambda: any(line.startswith("search ") for line in lines) or not thread.is_alive(), "the search to start")
        assert "data nodeglyphs ready on 1 node(s)" in lines and "optuna search, fifo scheduler" in lines[-1], lines
        cluster.add_worker("late", {NODE_ENV: "late"})
        thread.join(timeout=600)  # a bound for a broken test, not a wait
        assert not thread.is_alive() and "error" not in box, box.get("error")
        result: SearchResult = box["result"]
        assert [(t.status, t.error) for t in result.trials] == [("finished", None)]
        assert (Path(os.environ["VPBENCH_DATA"]) / "nodes" / "late" / "nodeglyphs.ready").is_file()
        assert 1e-3 <= result.trials[0].values["train.lr"] <= 3e-3
        ray.kill(busy)
    finally:
        ray.shutdown()
