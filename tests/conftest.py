"""Shared fixtures: a fresh registry per test, a tiny trainable test model, real data paths."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from pydantic import Field
from torch import Tensor, nn

import vpbench
from vpbench.interfaces import Stage, StepOutput, VideoModel
from vpbench.plugins import Registry, get_registry

torch.set_num_threads(1)


class TinyConv(VideoModel):
    """A test-only trainable predictor: one 3x3 conv on the last two frames, rolled out."""

    class Config(vpbench.ComponentConfig):
        hidden: int = Field(8, description="hidden channels")
        noise: float = Field(0.0, description="train-time input noise (exercises the RNG on resume)")

    def __init__(self, config: Config, frame_shape: vpbench.FrameShape, context: int, horizon: int) -> None:
        super().__init__(config, frame_shape, context, horizon)
        c = frame_shape.channels
        self.net = nn.Sequential(nn.Conv2d(2 * c, config.hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(config.hidden, c, 3, padding=1))

    def _next(self, prev: Tensor, last: Tensor) -> Tensor:
        return last + self.net(torch.cat([prev, last], dim=1))

    def predict(self, context: Tensor, horizon: int) -> Tensor:
        prev, last = context[:, -2], context[:, -1]
        out = []
        for _ in range(horizon):
            prev, last = last, self._next(prev, last).clamp(0, 1)  # the contract: frames in [0, 1]
            out.append(last)
        return torch.stack(out, dim=1)

    def _step(self, batch: Tensor, step: int) -> StepOutput:
        cfg = self.config
        assert isinstance(cfg, TinyConv.Config)
        ctx = batch[:, : self.context]
        if cfg.noise:
            ctx = ctx + cfg.noise * torch.randn_like(ctx)
        pred = self.predict(ctx, self.horizon)
        loss = ((pred - batch[:, self.context :]) ** 2).mean()
        return StepOutput(loss, {"mse": float(loss.detach())})

    def stages(self) -> list[Stage]:
        return [Stage("main", self._step, self.parameters, lr=3e-3)]


def wait_at_gate(gate: str) -> None:
    """A test-only barrier for a run on any node of a test cluster: say so with a file
    ``<gate>.reached.<pid>`` and wait until the test creates ``<gate>.open``. The test then acts
    on a run that is certainly still running, however slowly the machine goes."""
    Path(f"{gate}.reached.{os.getpid()}").touch()
    deadline = time.monotonic() + 600  # only so that a broken test cannot hang forever
    while not Path(f"{gate}.open").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"nobody opened the gate {gate}")
        time.sleep(0.05)


def at_gate(gate: Path) -> int:
    """How many runs (worker processes) have reached ``gate`` so far."""
    return len(list(gate.parent.glob(f"{gate.name}.reached.*")))


def interrupt_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """TinyConv's training raises KeyboardInterrupt (as Ctrl-C would) at ``global_step == step``,
    from inside the code path: no signal timing involved."""
    original = TinyConv._step

    def step_fn(self: TinyConv, batch: Tensor, global_step: int) -> StepOutput:
        if global_step == step:
            raise KeyboardInterrupt
        return original(self, batch, global_step)

    monkeypatch.setattr(TinyConv, "_step", step_fn)


class TestPlugin:
    """Registers TinyConv as a test-only model plugin (llm's mock-model fixture)."""

    @vpbench.hookimpl
    def register_models(self, register: Callable[[vpbench.ModelSpec], None]) -> None:
        register(vpbench.ModelSpec(name="tinyconv", target="conftest:TinyConv", description="test-only conv model"))


@pytest.fixture
def registry() -> Registry:
    """First-party plugins plus the test plugin, freshly built."""
    return get_registry([TestPlugin()])


@pytest.fixture
def small_glyphs() -> list[str]:
    """--set overrides that make the embedded dataset tiny."""
    return ["dataset.train_length=64", "dataset.val_length=8", "dataset.test_length=8"]


@pytest.fixture
def shared_data() -> Path:
    """The real third-party data, when the test command found it."""
    root = os.environ.get("VPBENCH_TEST_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("real data not available: set VPBENCH_TEST_DATA to ../shared/data (the test command does)")
    return Path(root)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Runs and data never touch the user's home or the repository."""
    monkeypatch.setenv("VPBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on 127.0.0.1 serving a folder: ``(base_url, folder)``."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()
    httpd.server_close()
