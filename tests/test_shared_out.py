"""``--shared-out`` on the two-node loopback cluster (`raycluster.py`), whose nodes share this
machine's file system: the nodes write the runs' states and results to ``--out`` themselves, the
driver receives no state bytes (the transport's counter), and the results are those of the
streamed mode bitwise, across a killed worker (bench's retry) and a ``run --resume``.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from conftest import TestPlugin, at_gate
from vpbench.cli import AppState
from vpbench.cli import bench as bench_cli
from vpbench.cli import run as run_cli
from vpbench.cluster import transport
from vpbench.errors import ConfigError, TrainingError
from vpbench.plugins import get_plugin_manager
from vpbench.records import read_record

ray = pytest.importorskip("ray")

from raycluster import Cluster, NodeLocalPlugin, cluster  # noqa: E402,F401  (cluster: the fixture)
from test_tune import TINY, GatePlugin, _driver, _wait_for  # noqa: E402

pytestmark = pytest.mark.cluster


def _app() -> AppState:
    return AppState(get_plugin_manager([TestPlugin(), NodeLocalPlugin(), GatePlugin()]))


def _gate_pid(gate: Path) -> int:
    """The worker process waiting at ``gate`` (its ``.reached.<pid>`` file)."""
    (reached,) = gate.parent.glob(f"{gate.name}.reached.*")
    return int(reached.name.rsplit(".", 1)[1])


def _same_results(a: Path, b: Path) -> None:
    """Two run directories hold the same record metrics, selection and checkpoints, bitwise."""
    import torch

    ra, rb = read_record(a / "record.json"), read_record(b / "record.json")
    assert ra.train.steps_done == rb.train.steps_done
    assert (ra.train.selected_step, ra.train.select_value, ra.train.history) == (rb.train.selected_step, rb.train.select_value, rb.train.history)
    assert {p: {k: r.mean for k, r in m.items()} for p, m in ra.metrics.items()} == {p: {k: r.mean for k, r in m.items()} for p, m in rb.metrics.items()}
    for name in ("best.pt", "last.pt"):
        sa = torch.load(a / "checkpoints" / name, map_location="cpu", weights_only=False)["state_dict"]
        sb = torch.load(b / "checkpoints" / name, map_location="cpu", weights_only=False)["state_dict"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name


def test_the_node_checks_that_it_reaches_the_shared_folder(tmp_path: Path) -> None:
    from vpbench.cluster.shared import check_reachable

    check_reachable(tmp_path / "run", "node-a")  # exists and is writable: no error, no probe left
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match=r"^--shared-out: .*missing does not exist on node-b; mount --out at the same path"):
        check_reachable(tmp_path / "missing" / "run", "node-b")
    result = CliRunner().invoke(run_cli.command, ["--model", "tinyconv", "--dataset", "glyphs", "--shared-out"], obj=_app())
    assert isinstance(result.exception, ConfigError) and "--shared-out says where a cluster node writes the run; give --address" in str(result.exception)


def test_run_address_shared_out_sends_no_state_bytes_and_resumes_to_the_streamed_result(cluster: Cluster, tmp_path: Path) -> None:
    from vpbench.engine.run import RunRequest
    from vpbench.tune import submit_run

    sets = ["train.max_steps=12", "train.eval_every=4", "model.gate_step=6", *TINY]
    # streamed (the default): the states come to this process
    open_gate = tmp_path / "open"
    Path(f"{open_gate}.open").touch()
    args = ["--model", "tinyconv-gated", "--dataset", "glyphs", "--address", cluster.address, "--out", str(tmp_path / "streamed")]
    args += ["--no-progress", "--compare", "none", f"--set=model.gate={open_gate}", *[f"--set={s}" for s in sets]]
    before = transport.traffic.bytes
    streamed = CliRunner().invoke(run_cli.command, args, obj=_app(), catch_exceptions=False)
    assert streamed.exit_code == 0, streamed.output
    assert transport.traffic.bytes > before and "received from" in streamed.output

    # shared: the node writes --out; its worker is killed at the gate before step 6 (after
    # writing step 4's state) with no retries left, then `run --resume --shared-out` continues
    gate, out = tmp_path / "gate", tmp_path / "shared"
    req = RunRequest(model="tinyconv-gated", dataset="glyphs", sets=[*sets, f"model.gate={gate}"], out=out, progress=False, compare=())
    lines: list[str] = []
    box: dict[str, Any] = {}

    def submit() -> None:
        try:
            box["result"] = submit_run(req, _app().registry, cluster.address, echo=lines.append, max_retries=0, shared_out=True)
        except BaseException as exc:  # noqa: BLE001 - checked below
            box["error"] = exc

    messages, sent = transport.traffic.messages, transport.traffic.bytes
    thread = threading.Thread(target=submit, daemon=True)
    thread.start()
    _wait_for(lambda: at_gate(gate) or not thread.is_alive(), "the run at its gate")
    assert thread.is_alive(), (box, lines)
    assert (out / "run.yaml").is_file() and (out / "checkpoints" / "last.pt").is_file()  # written by the node
    os.kill(_gate_pid(gate), signal.SIGKILL)
    thread.join(timeout=600)  # a bound for a broken test, not a wait
    assert isinstance(box.get("error"), TrainingError) and f"--address {cluster.address} --shared-out," in str(box["error"]), (box, lines)
    assert [line for line in lines if "checkpoint at step" in line] == [line for line in lines if "written to --out by" in line] != []
    Path(f"{gate}.open").touch()
    resumed = CliRunner().invoke(
        run_cli.command,
        ["--resume", "--out", str(out), "--address", cluster.address, "--shared-out", "--no-progress", "--compare", "none"],
        obj=_app(), catch_exceptions=False,
    )
    assert resumed.exit_code == 0, resumed.output
    assert "checkpoint at step 8 written to --out by" in resumed.output and f"run directory written to {out}" in resumed.output
    assert transport.traffic.bytes == sent and transport.traffic.messages > messages  # messages, but no state bytes
    assert read_record(out / "record.json").train.attempts == 2
    _same_results(tmp_path / "streamed", out)


def test_bench_shared_out_retries_a_killed_run_from_the_state_its_node_wrote(cluster: Cluster, tmp_path: Path) -> None:
    def suite(gate: Path) -> Path:
        path = tmp_path / f"{gate.name}.yaml"
        entry = {"name": "tiny", "model": "tinyconv-gated", "set": {"model.gate": str(gate), "model.gate_step": 6}}
        common = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in ["train.max_steps=12", "train.eval_every=4", *TINY])}
        data = {"datasets": ["glyphs"], "seeds": [0], "set": common, "compare": [], "entries": [entry]}
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def invoke(args: list[str]) -> Any:
        return CliRunner().invoke(bench_cli.command, args, obj=_app(), catch_exceptions=False)

    open_gate = tmp_path / "open"
    Path(f"{open_gate}.open").touch()
    before = transport.traffic.bytes
    streamed = invoke([str(suite(open_gate)), "--address", cluster.address, "--out", str(tmp_path / "streamed"), "--quiet"])
    assert streamed.exit_code == 0, streamed.output
    assert transport.traffic.bytes > before
    print(f"streamed suite: the driver received {transport.traffic.bytes - before} state bytes")

    gate, out = tmp_path / "gate", tmp_path / "shared"
    run_dir = out / "glyphs" / "tiny-seed-0"
    args = [str(suite(gate)), "--address", cluster.address, "--out", str(out), "--shared-out", "--quiet"]
    box: dict[str, Any] = {}
    messages, sent = transport.traffic.messages, transport.traffic.bytes
    thread = threading.Thread(target=lambda: box.setdefault("result", invoke(args)), daemon=True)
    thread.start()
    _wait_for(lambda: at_gate(gate) or not thread.is_alive(), "the run at its gate")
    assert thread.is_alive(), box
    # the node wrote step 4's state and its note (step, node) into the run's folder itself
    assert '"step": 4' in (run_dir / "bench-state.json").read_text() and (run_dir / "checkpoints" / "last.pt").is_file()
    os.kill(_gate_pid(gate), signal.SIGKILL)
    Path(f"{gate}.open").touch()
    thread.join(timeout=600)  # a bound for a broken test, not a wait
    result = box["result"]
    assert result.exit_code == 0, result.output
    assert "(attempt 2, resuming from step 4)" in result.output and "1 finished, 0 skipped (finished before), 0 failed" in result.output
    assert transport.traffic.bytes == sent and transport.traffic.messages > messages
    assert not list(out.rglob("bench-state.json")) and not list(out.rglob(".tiny-seed-0.*"))
    _same_results(tmp_path / "streamed" / "glyphs" / "tiny-seed-0", run_dir)


def test_a_sigterm_of_a_shared_out_driver_prints_a_resume_that_keeps_the_mode(cluster: Cluster, tmp_path: Path) -> None:
    common = ["run", "--model", "tinyconv-gated", "--dataset", "glyphs", "--address", cluster.address, "--no-progress", "--compare", "none"]
    common += ["--set=train.max_steps=12", "--set=train.eval_every=4", "--set=model.gate_step=6", *[f"--set={s}" for s in TINY]]
    Path(f"{tmp_path / 'open'}.open").touch()
    straight = _driver([*common, "--out", "straight", f"--set=model.gate={tmp_path / 'open'}"], tmp_path)
    _, err = straight.communicate(timeout=600)  # a bound for a broken test, not a wait
    assert straight.returncode == 0, err

    gate = tmp_path / "gate"
    driver = _driver([*common, "--out", "stopped", "--shared-out", f"--set=model.gate={gate}"], tmp_path)
    try:
        _wait_for(lambda: at_gate(gate) or driver.poll() is not None, "the run at its gate")
        assert driver.poll() is None, driver.communicate()
        driver.send_signal(signal.SIGTERM)
        out, err = driver.communicate(timeout=600)  # a bound for a broken test, not a wait
    finally:
        driver.kill()
    assert "checkpoint at step 4 written to --out by" in out, out
    hint = f"vpbench run --resume --out stopped --address {cluster.address} --shared-out"
    assert driver.returncode == 130 and f"continue with: {hint}" in err, err
    stopped = tmp_path / "stopped"
    assert (stopped / "checkpoints" / "last.pt").is_file() and not (stopped / "record.json").exists()
    Path(f"{gate}.open").touch()
    resumed = _driver([*shlex.split(hint)[1:], "--no-progress", "--compare", "none"], tmp_path)
    out, err = resumed.communicate(timeout=600)  # a bound for a broken test, not a wait
    assert resumed.returncode == 0, err
    assert "run directory written to stopped" in out and "received from" not in out, out
    assert read_record(stopped / "record.json").train.attempts == 2
    _same_results(tmp_path / "straight", stopped)
