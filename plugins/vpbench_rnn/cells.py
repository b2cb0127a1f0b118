"""Recurrent cells: ConvLSTM (Shi et al. 2015) and the spatiotemporal LSTM (Wang et al. 2017).

Convolutions carry no bias, as in the PredRNN family, so parameter counts are comparable
with PredRNN and OpenSTL. Each cell adds a constant ``forget_bias`` (``β`` below) to its forget-gate
pre-activations: PredRNN's ST-LSTM uses 1.0; OpenSTL's ConvLSTM adds none (0.0), and neither
constant is part of Shi et al.'s equations. ``*`` below is a
``k × k`` convolution with "same" padding, ``∘`` the element-wise product. Every tensor is
``[B, channels, h, w]`` with ``h × w`` the patched frame size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ConvLSTMCell", "SpatioTemporalLSTMCell"]


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)


def _norm(channels: int, size: tuple[int, int], on: bool) -> nn.Module:
    # PredRNN's layer norm normalises each conv output over (channels, h, w)
    return nn.LayerNorm([channels, *size]) if on else nn.Identity()


class ConvLSTMCell(nn.Module):
    """ConvLSTM (Shi et al. 2015, eq. 3)::

        i_t = σ(W_xi * X_t + W_hi * H_{t-1} [+ W_ci ∘ C_{t-1}])
        f_t = σ(W_xf * X_t + W_hf * H_{t-1} [+ W_cf ∘ C_{t-1}] + β)
        C_t = f_t ∘ C_{t-1} + i_t ∘ tanh(W_xc * X_t + W_hc * H_{t-1})
        o_t = σ(W_xo * X_t + W_ho * H_{t-1} [+ W_co ∘ C_t])
        H_t = o_t ∘ tanh(C_t)

    ``β`` is ``forget_bias``, a constant that is not part of Shi et al.'s equation 3 (whose
    gates have learnt biases, which these bias-free convolutions omit). The ``convlstm`` model
    defaults it to 0.0, matching OpenSTL's ConvLSTM cell. The bracketed peephole terms
    (per-position weights ``[hidden, h, w]``) are on with ``peephole=True``. Note ``H_t = o_t ∘ tanh(C_t)``: OpenSTL's v0.3.0 cell used
    ``o_t ∘ g_t`` (issue #68), which the published ConvLSTM rows were trained with.
    """

    def __init__(
        self, cin: int, hidden: int, k: int, size: tuple[int, int], *, layer_norm: bool, peephole: bool, forget_bias: float
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.conv_x = _conv(cin, 4 * hidden, k)
        self.conv_h = _conv(hidden, 4 * hidden, k)
        self.norm_x = _norm(4 * hidden, size, layer_norm)
        self.norm_h = _norm(4 * hidden, size, layer_norm)
        self.peep = nn.Parameter(torch.zeros(3, hidden, *size)) if peephole else None

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        gates = self.norm_x(self.conv_x(x)) + self.norm_h(self.conv_h(h))  # [B, 4·hid, h, w]
        i, f, g, o = gates.chunk(4, dim=1)
        if self.peep is not None:
            i = i + self.peep[0] * c
            f = f + self.peep[1] * c
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peep is not None:
            o = o + self.peep[2] * c
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class SpatioTemporalLSTMCell(nn.Module):
    """ST-LSTM (Wang et al. 2017, eq. 3), layer ``l`` at time ``t``::

        g_t  = tanh(W_xg * X_t + W_hg * H^l_{t-1})        temporal memory C (per layer)
        i_t  = σ(W_xi * X_t + W_hi * H^l_{t-1})
        f_t  = σ(W_xf * X_t + W_hf * H^l_{t-1} + β)
        C^l_t = f_t ∘ C^l_{t-1} + i_t ∘ g_t
        g'_t = tanh(W'_xg * X_t + W_mg * M^{l-1}_t)       spatiotemporal memory M (zigzag)
        i'_t = σ(W'_xi * X_t + W_mi * M^{l-1}_t)
        f'_t = σ(W'_xf * X_t + W_mf * M^{l-1}_t + β)
        M^l_t = f'_t ∘ M^{l-1}_t + i'_t ∘ g'_t
        o_t  = σ(W_xo * X_t + W_ho * H^l_{t-1} + W_co * C^l_t + W_mo * M^l_t)
        H^l_t = o_t ∘ tanh(W_{1×1} * [C^l_t, M^l_t])

    ``X_t`` is the frame (layer 0) or ``H^{l-1}_t``; ``M^{l-1}_t`` for layer 0 is the top
    layer's ``M^L_{t-1}`` (the zigzag flow, handled by the network).
    """

    def __init__(self, cin: int, hidden: int, k: int, size: tuple[int, int], *, layer_norm: bool, forget_bias: float) -> None:
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.conv_x = _conv(cin, 7 * hidden, k)  # g, i, f, g', i', f', o
        self.conv_h = _conv(hidden, 4 * hidden, k)  # g, i, f, o
        self.conv_m = _conv(hidden, 3 * hidden, k)  # g', i', f'
        self.conv_o = _conv(2 * hidden, hidden, k)  # W_co * C + W_mo * M on [C, M]
        self.conv_cm = nn.Conv2d(2 * hidden, hidden, 1, bias=False)  # W_{1×1}
        self.norm_x = _norm(7 * hidden, size, layer_norm)
        self.norm_h = _norm(4 * hidden, size, layer_norm)
        self.norm_m = _norm(3 * hidden, size, layer_norm)
        self.norm_o = _norm(hidden, size, layer_norm)

    def forward(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h, c, m, _, _ = self.step(x, h, c, m)
        return h, c, m

    def step(self, x: Tensor, h: Tensor, c: Tensor, m: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(H^l_t, C^l_t, M^l_t, ΔC^l_t, ΔM^l_t)`` with the memory increments ``ΔC = i_t ∘ g_t``
        and ``ΔM = i'_t ∘ g'_t`` (PredRNN-V2's decoupling loss compares them), all ``[B, hid, h, w]``."""
        gx, ix, fx, gx2, ix2, fx2, ox = self.norm_x(self.conv_x(x)).chunk(7, dim=1)
        gh, ih, fh, oh = self.norm_h(self.conv_h(h)).chunk(4, dim=1)
        gm, im, fm = self.norm_m(self.conv_m(m)).chunk(3, dim=1)
        dc = torch.sigmoid(ix + ih) * torch.tanh(gx + gh)
        c = torch.sigmoid(fx + fh + self.forget_bias) * c + dc
        dm = torch.sigmoid(ix2 + im) * torch.tanh(gx2 + gm)
        m = torch.sigmoid(fx2 + fm + self.forget_bias) * m + dm
        cm = torch.cat([c, m], dim=1)  # [B, 2·hid, h, w]
        o = torch.sigmoid(ox + oh + self.norm_o(self.conv_o(cm)))
        h = o * torch.tanh(self.conv_cm(cm))
        return h, c, m, dc, dm
