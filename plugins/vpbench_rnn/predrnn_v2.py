"""PredRNN-V2 (Wang et al., TPAMI 2022): PredRNN plus memory decoupling and reverse scheduled sampling.

The network is PredRNN's (:mod:`.predrnn`: ST-LSTM stack, zigzag ``M``, patched rollout) with
two training-only additions:

* **Decoupling loss.** Each ST-LSTM writes the increments ``ΔC^l_t = i_t ∘ g_t`` into its
  temporal memory and ``ΔM^l_t = i'_t ∘ g'_t`` into the spatiotemporal one (both
  ``[B, hid, h, w]``). A shared bias-free 1×1 convolution ``W_dec`` (hid → hid, the "adapter")
  maps both, and their cosine similarity over the ``h·w`` positions of each channel ``k`` is
  penalised::

      L_dec = mean_{t, l, b, k} | <W_dec ΔC^l_t, W_dec ΔM^l_t>_{b,k} | / (‖W_dec ΔC^l_t‖_{b,k} · ‖W_dec ΔM^l_t‖_{b,k})
      L = MSE(x̂_{2..T+S}, x_{2..T+S}) + β · L_dec

  over the ``T+S-1`` steps and ``L`` layers (the paper writes sums; the reference code, and
  so this one, takes means). ``β`` (``decouple_beta``) is 0.1 for Moving-MNIST, 0.01 for KTH.
* **Reverse scheduled sampling** (:func:`.sampling.reverse_etas`): context inputs are ground
  truth with a probability rising 0.5 → 1, future inputs with one falling 0.5 → 0.

``W_dec`` (hid² weights) is the only parameter PredRNN-V2 adds: 23,838,720 + 16,384 =
23,855,104 for the Moving-MNIST configuration. It is not used at test time, so ``predict``
skips it (the reference code computes it there and discards it).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from .cells import SpatioTemporalLSTMCell
from .predrnn import PredRNN
from .sampling import SamplingMode

__all__ = ["PredRNNv2"]

# ([(H^l, C^l) per layer], M^L_{t-1}, decoupling terms so far or None when not training)
State = tuple[list[tuple[Tensor, Tensor]], Tensor, "list[Tensor] | None"]


class PredRNNv2(PredRNN):
    """PredRNN-V2; defaults give the Moving-MNIST set-up (23,855,104 parameters)."""

    class Config(PredRNN.Config):
        sampling: SamplingMode = Field("reverse", description="'reverse' (PredRNN-V2), 'scheduled' or 'off'")
        decouple_beta: float = Field(0.1, ge=0, description="weight β of the decoupling loss (0.1 MMNIST, 0.01 KTH)")

    config: Config

    def build(self, cin: int) -> None:
        super().build(cin)
        h = self.config.hidden
        self.adapter = nn.Conv2d(h, h, 1, bias=False)  # W_dec, shared by all layers and both memories

    def init_state(self, batch: int, like: Tensor) -> State:  # type: ignore[override]
        hc, m = super().init_state(batch, like)
        return hc, m, None

    def train_state(self, batch: int, like: Tensor) -> State:
        hc, m, _ = self.init_state(batch, like)
        return hc, m, []

    def _decoupling(self, dc: Tensor, dm: Tensor) -> Tensor:
        """mean_{b,k} |cos(W_dec ΔC, W_dec ΔM)| over positions: ``[B, hid, h, w] × 2 -> []``."""
        a = self.adapter(dc).flatten(2)  # [B, hid, h·w]
        b = self.adapter(dm).flatten(2)
        return F.cosine_similarity(a, b, dim=2).abs().mean()

    def cell_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:  # type: ignore[override]
        hc, m, terms = state  # m = M^L_{t-1}, entering the bottom layer (zigzag)
        new: list[tuple[Tensor, Tensor]] = []
        for cell, (h, c) in zip(self.cells, hc):
            x, c, m, dc, dm = cast(SpatioTemporalLSTMCell, cell).step(x, h, c, m)
            new.append((x, c))
            if terms is not None:
                terms.append(self._decoupling(dc, dm))
        return x, (new, m, terms)

    def state_losses(self, state: State) -> dict[str, tuple[float, Tensor]]:
        terms = state[2]
        if not terms:
            return {}
        return {"decouple": (self.config.decouple_beta, torch.stack(terms).mean())}
