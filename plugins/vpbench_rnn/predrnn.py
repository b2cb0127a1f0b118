"""PredRNN (Wang et al., NeurIPS 2017): stacked ST-LSTM cells with the zigzag memory flow.

The spatiotemporal memory ``M`` climbs the stack within a time step and then jumps from the
top layer at ``t-1`` to the bottom layer at ``t``::

    M^0_t := M^L_{t-1},   (H^l_t, C^l_t, M^l_t) = ST-LSTM_l(H^{l-1}_t, H^l_{t-1}, C^l_{t-1}, M^{l-1}_t)

while each layer's temporal memory ``C^l`` flows horizontally as in a ConvLSTM.
"""

from __future__ import annotations

from torch import Tensor, nn

from .cells import SpatioTemporalLSTMCell
from .rollout import RecurrentConfig, RecurrentPredictor

__all__ = ["PredRNN"]

# ([(H^l, C^l) per layer], M) with M the top layer's spatiotemporal memory of the last step
State = tuple[list[tuple[Tensor, Tensor]], Tensor]


class PredRNN(RecurrentPredictor):
    """PredRNN with ``num_layers`` ST-LSTM layers; defaults give the published 23,838,720 parameters."""

    class Config(RecurrentConfig):
        pass

    config: Config

    def build(self, cin: int) -> None:
        c = self.config
        self.cells = nn.ModuleList(
            SpatioTemporalLSTMCell(
                cin if i == 0 else c.hidden,
                c.hidden,
                c.filter_size,
                self.size,
                layer_norm=c.layer_norm,
                forget_bias=c.forget_bias,
            )
            for i in range(c.num_layers)
        )

    def init_state(self, batch: int, like: Tensor) -> State:
        zeros = like.new_zeros(batch, self.config.hidden, *self.size)
        return [(zeros, zeros) for _ in self.cells], zeros

    def cell_step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        hc, m = state  # m = M^L_{t-1}, entering the bottom layer (zigzag)
        new: list[tuple[Tensor, Tensor]] = []
        for cell, (h, c) in zip(self.cells, hc):
            x, c, m = cell(x, h, c, m)
            new.append((x, c))
        return x, (new, m)
