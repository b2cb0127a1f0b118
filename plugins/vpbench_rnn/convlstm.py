"""ConvLSTM (Shi et al., NeurIPS 2015) as a patched 4-layer stack, trained like PredRNN."""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from .cells import ConvLSTMCell
from .rollout import RecurrentConfig, RecurrentPredictor

__all__ = ["ConvLSTM"]

State = list[tuple[Tensor, Tensor]]


class ConvLSTM(RecurrentPredictor):
    """Layer ``l`` at time ``t``: ``(H^l_t, C^l_t) = cell_l(H^{l-1}_t, (H^l_{t-1}, C^l_{t-1}))``, ``H^0_t = x_t``."""

    class Config(RecurrentConfig):
        peephole: bool = Field(False, description="Shi et al.'s peephole terms W_c ∘ C (off in PredRNN/OpenSTL)")
        forget_bias: float = Field(
            0.0, description="constant added to forget-gate pre-activations (0.0: OpenSTL's ConvLSTM cell adds none)"
        )

    config: Config

    def build(self, cin: int) -> None:
        c = self.config
        self.cells = nn.ModuleList(
            ConvLSTMCell(
                cin if i == 0 else c.hidden,
                c.hidden,
                c.filter_size,
                self.size,
                layer_norm=c.layer_norm,
                peephole=c.peephole,
                forget_bias=c.forget_bias,
            )
            for i in range(c.num_layers)
        )

    def init_state(self, batch: int, like: Tensor) -> State:
        zeros = like.new_zeros(batch, self.config.hidden, *self.size)
        return [(zeros, zeros) for _ in self.cells]

    def cell_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        new: State = []
        for cell, hc in zip(self.cells, state):
            x, c = cell(x, hc)
            new.append((x, c))
        return x, new
