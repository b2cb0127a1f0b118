"""The motion-aware unit (Chang et al., MAU, NeurIPS 2021, sec. 3).

Layer ``l`` at time ``t`` takes the temporal state ``T_{t-1}`` (its own, from the previous step)
and the spatial state ``S_t`` (from the layer below, or the encoded frame), and the last ``τ``
temporal states ``T_{t-τ..t-1}`` and spatial inputs ``S_{t-τ..t-1}`` of this layer.
``*`` is a ``k × k`` "same" convolution followed by LayerNorm over ``[channels, h, w]``::

  attention module (eq. 1–3)
    α_j   = softmax_j( <S_{t-j}, W_s' * S_t> / √d ),   d = channels·h·w,  j = 1..τ
    T_att = Σ_j α_j · T_{t-j}                             long-term motion trend
    U_f   = σ(W_t' * T_{t-1})
    T_AMI = U_f ∘ T_{t-1} + (1 − U_f) ∘ T_att              augmented motion information
  fusion module (eq. 4–5)
    [t_u, t_t, t_s] = W_t * T_AMI,   [s_u, s_t, s_s] = W_s * S_t
    T_t = σ(t_u) ∘ t_t + (1 − σ(t_u)) ∘ s_t
    S_t^{l} = σ(s_u) ∘ s_s + (1 − σ(s_u)) ∘ t_s   (+ S_t in the 'residual' cell mode)

All states are ``[B, hidden, h, w]``; the stacks of ``τ`` are ``[τ, B, hidden, h, w]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["MAUCell"]


def _conv_ln(cin: int, cout: int, k: int, size: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.LayerNorm([cout, *size]))


class MAUCell(nn.Module):
    def __init__(self, cin: int, hidden: int, k: int, size: tuple[int, int], residual: bool = False) -> None:
        super().__init__()
        self.hidden = hidden
        self.residual = residual
        self.scale = math.sqrt(hidden * size[0] * size[1])  # √d
        self.conv_t = _conv_ln(cin, 3 * hidden, k, size)  # W_t   on T_AMI
        self.conv_t_next = _conv_ln(cin, hidden, k, size)  # W_t'  on T_{t-1}
        self.conv_s = _conv_ln(hidden, 3 * hidden, k, size)  # W_s   on S_t
        self.conv_s_next = _conv_ln(hidden, hidden, k, size)  # W_s'  on S_t

    def forward(self, t_prev: Tensor, s: Tensor, t_hist: Tensor, s_hist: Tensor) -> tuple[Tensor, Tensor]:
        """``(T_{t-1}, S_t, T_{t-τ..t-1} [τ,B,...], S_{t-τ..t-1} [τ,B,...]) -> (T_t, S_t^l)``."""
        s_query = self.conv_s_next(s)  # [B, hid, h, w]
        scores = (s_hist * s_query).sum(dim=(2, 3, 4)) / self.scale  # [τ, B]
        alpha = torch.softmax(scores, dim=0)[..., None, None, None]  # [τ, B, 1, 1, 1]
        t_att = (t_hist * alpha).sum(dim=0)  # [B, hid, h, w]
        u_f = torch.sigmoid(self.conv_t_next(t_prev))
        t_ami = t_prev * u_f + (1 - u_f) * t_att
        t_u, t_t, t_s = self.conv_t(t_ami).split(self.hidden, dim=1)
        s_u, s_t, s_s = self.conv_s(s).split(self.hidden, dim=1)
        gate_t, gate_s = torch.sigmoid(t_u), torch.sigmoid(s_u)
        t_new = gate_t * t_t + (1 - gate_t) * s_t
        s_new = gate_s * s_s + (1 - gate_s) * t_s
        if self.residual:
            s_new = s_new + s
        return t_new, s_new
