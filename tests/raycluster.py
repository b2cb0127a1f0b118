"""A real two-node Ray cluster on 127.0.0.1 for the cluster tests (a head and a worker node).

Each node has one CPU, a small object store and no dashboard. The ``cluster`` fixture starts
it once per test module that imports it and always tears it down: every process of both nodes
is killed by its session id. Workers import ``conftest`` (the test plugins) through PYTHONPATH.
``Cluster.add_worker`` starts another node while a test runs (a machine joining late).

All nodes share this machine's disk; ``nodeglyphs`` (:class:`NodeLocalPlugin`) is the
embedded glyphs dataset with its "files" on a node-local disk: each node keeps them under
``<data root>/nodes/<$VPBENCH_TEST_NODE>/``, so a node started with its own tag has no data
until something prepares them there. ``convlstm-gated`` (:class:`ConvLSTMGatePlugin`) is the real
ConvLSTM with a test-only gate at a step (``conftest.wait_at_gate``): a test can act on runs
that are certainly still running, on any node.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from typing import Any

from pydantic import Field
from torch import Tensor

import vpbench
from conftest import wait_at_gate
from vpbench.errors import DataError

ray = pytest.importorskip("ray")

from vpbench_glyphs.dataset import GlyphsDataset  # noqa: E402
from vpbench_rnn.convlstm import ConvLSTM  # noqa: E402

TESTS = Path(__file__).resolve().parent
RAY_BIN = Path(sys.executable).parent / "ray"
# Ray replaces 127.0.0.1 by the machine's outward address; these nodes stay on loopback
_LOOPBACK = "from ray._private import services; services.resolve_ip_for_localhost = lambda host: host"
_LAUNCH = [sys.executable, "-c", f"import sys; {_LOOPBACK}; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"]
_NODE = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats", "--block"]


NODE_ENV = "VPBENCH_TEST_NODE"


class NodeLocalGlyphs(GlyphsDataset):
    """Glyphs whose prepared files live on the node's own disk (a marker file per node)."""

    name = "nodeglyphs"

    @property
    def marker(self) -> Path:
        return Path(self.data_root) / "nodes" / os.environ.get(NODE_ENV, "default") / "nodeglyphs.ready"

    def prepare(self, *, progress: bool = True) -> None:
        if not self.marker.exists():
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.marker.with_suffix(".tmp")
            tmp.write_text("ready\n")
            tmp.rename(self.marker)

    def check(self) -> None:
        if not self.marker.exists():
            raise DataError(f"nodeglyphs is not prepared on this node ({self.marker} missing); run: vpbench data prepare nodeglyphs")


class NodeLocalPlugin:
    @vpbench.hookimpl
    def register_datasets(self, register: object) -> None:
        register(vpbench.DatasetSpec(name="nodeglyphs", target="raycluster:NodeLocalGlyphs", description="test-only node-local glyphs", frame_shape=(1, 64, 64), context=10, horizon=10))  # type: ignore[operator]


class GatedConvLSTM(ConvLSTM):
    """ConvLSTM whose training waits before step ``gate_step`` until the test opens the gate."""

    class Config(ConvLSTM.Config):
        gate: str = Field("", description="path prefix of the gate files ('': no gate)")
        gate_step: int = Field(-1, description="the step that waits at the gate")

    config: Config

    def stages(self) -> list[vpbench.Stage]:
        cfg = self.config

        def gated(stage: vpbench.Stage) -> vpbench.Stage:
            def step(batch: Tensor, n: int) -> Any:
                if cfg.gate and n == cfg.gate_step:
                    wait_at_gate(cfg.gate)
                return stage.step(batch, n)

            return dataclasses.replace(stage, step=step)

        return [gated(stage) for stage in super().stages()]


class ConvLSTMGatePlugin:
    @vpbench.hookimpl
    def register_models(self, register: Any) -> None:
        register(vpbench.ModelSpec(name="convlstm-gated", target="raycluster:GatedConvLSTM", description="test-only gated ConvLSTM"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the session ``sid`` (a node started by this module)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getsid(int(proc.name)) == sid:
                os.kill(int(proc.name), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue


class Cluster:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env, self.logs = env, logs
        self.temp = tempfile.mkdtemp(prefix="vpray", dir="/tmp")  # short: Ray's socket paths are limited
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.nodes[name] = subprocess.Popen([*_LAUNCH, "start", *args, *_NODE], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        self._start("head", ["--head", "--port", str(self.port), "--include-dashboard=false", "--temp-dir", self.temp])
        deadline = time.monotonic() + 300  # an upper bound for a loaded machine, not a wait
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (self.logs / "head.log").read_text()[-2000:]
                time.sleep(0.5)
        self._start("worker", ["--address", self.address])

    def add_worker(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start one more worker node (``env`` added to its environment); it joins the head."""
        saved = self.env
        self.env = {**saved, **(env or {})}
        try:
            self._start(name, ["--address", self.address])
        finally:
            self.env = saved

    def kill(self, name: str) -> None:
        node = self.nodes.pop(name, None)
        if node is not None:
            _kill_session(node.pid)
            node.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.nodes):
            self.kill(name)
        shutil.rmtree(self.temp, ignore_errors=True)


def alive_nodes() -> int:
    return sum(1 for n in ray.nodes() if n["Alive"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        # workers import conftest (the tinyconv plugin), and vpbench from where this test run does
        # workers import this checkout's vpbench and plugins (not another installed copy) and conftest
        here = [str(TESTS), str(TESTS.parent), str(TESTS.parent / "plugins")]
        mp.setenv("PYTHONPATH", os.pathsep.join([*here, *filter(None, [os.environ.get("PYTHONPATH")])]))
        mp.setenv("RAY_DEDUP_LOGS", "0")
        mp.setattr("ray._private.services.resolve_ip_for_localhost", lambda host: host)
        env = dict(
            os.environ,
            RAY_health_check_period_ms="1000",
            RAY_health_check_failure_threshold="3",
            RAY_health_check_initial_delay_ms="1000",
        )
        c = Cluster(env, tmp_path_factory.mktemp("ray-logs"))
        try:
            c.start()
            ray.init(address=c.address, log_to_driver=False)
            try:
                deadline = time.monotonic() + 300  # an upper bound for a loaded machine, not a wait
                while alive_nodes() < 2:
                    assert time.monotonic() < deadline, "the worker node did not join"
                    time.sleep(0.5)
            finally:
                ray.shutdown()
            yield c
        finally:
            if ray.is_initialized():
                ray.shutdown()
            c.stop()
