"""A throwaway third-party plugin package (model, dataset, metrics), written into a temp folder
and made visible through ``importlib.metadata`` as the installed distribution ``vpbench-toy``.

Each component can be told to make one of the contract mistakes a plugin author makes
(``mistake`` config keys, and the metrics registered with a wrong shape or no protocol).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

INIT = '''
import vpbench

@vpbench.hookimpl
def register_models(register):
    register(vpbench.ModelSpec(name="toy-model", target="vpbench_toy.model:Toy",
                               description="last frame plus a learnt offset", tiny={}))

@vpbench.hookimpl
def register_datasets(register):
    register(vpbench.DatasetSpec(name="toy", target="vpbench_toy.data:Toy", description="drifting squares",
                                 frame_shape=(1, 16, 16), context=2, horizon=3))
    if {extra_metrics}:
        register(vpbench.DatasetSpec(name="toy-liar", target="vpbench_toy.data:Toy", description="states 32x32",
                                     frame_shape=(1, 32, 32), context=2, horizon=3))

@vpbench.hookimpl
def register_metrics(register):
    register(vpbench.MetricSpec(name="toy-l1", target="vpbench_toy.metrics:L1",
                                description="mean absolute error", higher_is_better=False))
    register(vpbench.MetricSpec(name="toy-standard-only", target="vpbench_toy.metrics:L1",
                                description="only the standard protocol", higher_is_better=False,
                                protocols=("standard",)))
    if {extra_metrics}:
        register(vpbench.MetricSpec(name="toy-per-clip", target="vpbench_toy.metrics:PerClip",
                                    description="one value per clip (wrong)", higher_is_better=False))
'''

MODEL = '''
import torch
from pydantic import Field
import vpbench

class Toy(vpbench.VideoModel):
    class Config(vpbench.ComponentConfig):
        mistake: str = Field("", description="'', 'shape', 'scale' or 'crash'")

    def __init__(self, config, frame_shape, context, horizon):
        super().__init__(config, frame_shape, context, horizon)
        self.offset = torch.nn.Parameter(torch.zeros(()))

    def predict(self, context, horizon):
        pred = (context[:, -1:] + self.offset).clamp(0, 1).expand(-1, horizon, -1, -1, -1)
        if self.config.mistake == "shape":
            return pred[:, :, :, :-1]
        if self.config.mistake == "scale":
            return pred * 255
        if self.config.mistake == "crash":
            return pred.view(-1, 7)  # a bug in the plugin: view of a non-multiple size
        return pred

    def _step(self, batch, step):
        pred = self.predict(batch[:, : self.context], self.horizon)
        loss = ((pred - batch[:, self.context :]) ** 2).mean()
        return vpbench.StepOutput(loss)

    def stages(self):
        return [vpbench.Stage("main", self._step, self.parameters, lr=1e-2)]
'''

DATA = '''
import torch
from pydantic import Field
import vpbench

class _Split(torch.utils.data.Dataset):
    def __init__(self, n, offset, mistake):
        self.n, self.offset, self.mistake = n, offset, mistake

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        clip = torch.zeros(5, 1, 16, 16)
        y = (i + self.offset) % 8
        for t in range(5):
            clip[t, 0, y : y + 4, t : t + 4] = 1.0
        if self.mistake == "no-channel":
            return clip[:, 0]
        if self.mistake == "frame-shape":
            return torch.nn.functional.interpolate(clip, size=(8, 8))
        if self.mistake == "uint8":
            return (clip * 255).to(torch.uint8)
        if self.mistake == "scale":
            return clip * 255
        return clip

class Toy(vpbench.VideoDataset):
    name = "toy"
    fixed_test_sequences = (0, 1)

    class Config(vpbench.ComponentConfig):
        mistake: str = Field("", description="'', 'no-channel', 'frame-shape', 'uint8' or 'scale'")
        test_length: int = Field(4, description="test clips")

    @property
    def frame_shape(self):
        return vpbench.FrameShape(1, 16, 16)

    @property
    def context(self):
        return 2

    @property
    def horizon(self):
        return 3

    def split(self, name):
        if self.config.mistake == "missing":
            raise vpbench.DataError("toy data is missing; run `vpbench data prepare toy`")
        n = {"train": 8, "val": 4, "test": self.config.test_length}[name]
        return _Split(n, {"train": 0, "val": 100, "test": 200}[name], self.config.mistake)

    def checksum(self):
        return "toy:" + str(self.config.test_length)
'''

METRICS = '''
import vpbench

class L1(vpbench.Metric):
    name = "toy-l1"
    higher_is_better = False

    def per_frame(self, pred, true):
        return (pred - true).abs().flatten(2).mean(2).double()

class PerClip(L1):
    def per_frame(self, pred, true):
        return (pred - true).abs().flatten(1).mean(1).double()
'''


class FakeDist(metadata.Distribution):
    """A distribution that exists only in memory (pluggy's own test trick)."""

    def __init__(self, name: str, entry_points: str) -> None:
        self._name = name
        self._eps = entry_points

    def read_text(self, filename: str) -> str | None:
        if filename == "entry_points.txt":
            return self._eps
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: 0.1.0\n"
        return None

    def locate_file(self, path: Any) -> Path:
        return Path(path)


def write_package(site: Path, *, extra_metrics: bool = False) -> Path:
    pkg = site / "vpbench_toy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(INIT).replace("{extra_metrics}", str(extra_metrics)))
    (pkg / "model.py").write_text(textwrap.dedent(MODEL))
    (pkg / "data.py").write_text(textwrap.dedent(DATA))
    (pkg / "metrics.py").write_text(textwrap.dedent(METRICS))
    return pkg


def install(monkeypatch: pytest.MonkeyPatch, site: Path, dists: dict[str, str]) -> Iterator[None]:
    """Make ``site`` importable and ``dists`` (name -> entry_points.txt) installed."""
    monkeypatch.syspath_prepend(str(site))
    real = metadata.distributions

    def distributions(**kw: Any) -> Any:
        yield from real(**kw)
        for name, eps in dists.items():
            yield FakeDist(name, eps)

    monkeypatch.setattr(metadata, "distributions", distributions)
    yield
    for mod in [m for m in sys.modules if m.startswith("vpbench_toy") or m.startswith("vpbench_broken")]:
        del sys.modules[mod]
