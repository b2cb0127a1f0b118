"""Several futures per clip from a stochastic model, each from its own seeded random stream.

Draw 0 uses the process's random stream as it stands, so a model scored on N draws gives as
its first draw exactly what it gives with one; draw ``k >= 1`` runs on a stream seeded from
``(seed, k)`` that continues from batch to batch. The same seed gives the same draws, and
no draw's consumption of random numbers changes another's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["Draws", "draw_seed"]

Predictor = Callable[[Tensor, int], Tensor]


def draw_seed(seed: int, k: int) -> int:
    """The seed of draw ``k`` of a run seeded ``seed`` (a hash: streams of nearby seeds do not overlap)."""
    digest = hashlib.sha256(f"vpbench-draw:{seed}:{k}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


class Draws:
    """``n`` draws of ``predict`` per call: ``draws(context, horizon) -> [pred_0, ..., pred_{n-1}]``."""

    def __init__(self, predict: Predictor, n: int, seed: int, device: torch.device) -> None:
        self.predict = predict
        self.n = n
        self.devices = [device] if device.type == "cuda" else []
        self.states: list[tuple[Tensor, Tensor | None]] = []
        for k in range(1, n):
            with torch.random.fork_rng(devices=self.devices):
                torch.manual_seed(draw_seed(seed, k))
                self.states.append(self._capture())

    def _capture(self) -> tuple[Tensor, Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.devices[0]) if self.devices else None
        return torch.get_rng_state(), cuda

    def __call__(self, context: Tensor, horizon: int) -> list[Tensor]:
        out = [self.predict(context, horizon)]
        for k in range(1, self.n):
            with torch.random.fork_rng(devices=self.devices):  # the process's stream is given back after
                cpu, cuda = self.states[k - 1]
                torch.set_rng_state(cpu)
                if cuda is not None:
                    torch.cuda.set_rng_state(cuda, self.devices[0])
                out.append(self.predict(context, horizon))
                self.states[k - 1] = self._capture()
        return out
