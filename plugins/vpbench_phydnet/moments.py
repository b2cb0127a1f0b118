"""PhyDNet's moment constraint (Le Guen & Thome, CVPR 2020, sec. 3.3).

A ``k × k`` filter ``w`` approximates a differential operator through its moments::

    m_{a,b}(w) = Σ_{i,j} (i − c)^a / a! · (j − c)^b / b! · w_{i,j},   c = (k − 1) // 2,

i.e. ``m(w) = M w Mᵀ`` with ``M[a, j] = (j − c)^a / a!`` (``[k, k]``). PhyCell's first
convolution has ``k²`` output filters per input channel; filter ``n = a·k + b`` is asked to
have the moment matrix ``Δ_{a,b}`` (1 at ``(a, b)``, 0 elsewhere), so that it approximates
``∂^{a+b} / ∂x^a ∂y^b``. The loss is ``Σ_c MSE(m(W[:, c]), Δ)`` over the input channels ``c``,
computed in float64 as in the reference code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["moment_matrix", "moment_targets", "moments", "moment_loss"]


def moment_matrix(k: int) -> Tensor:
    """``M [k, k]`` (float64): ``M[a, j] = (j − (k − 1)//2)^a / a!``."""
    pos = torch.arange(k, dtype=torch.float64) - (k - 1) // 2
    order = torch.arange(k, dtype=torch.float64)
    fact = torch.tensor([math.factorial(a) for a in range(k)], dtype=torch.float64)
    return pos[None, :] ** order[:, None] / fact[:, None]  # 0^0 = 1


def moment_targets(k: int) -> Tensor:
    """``Δ [k², k, k]`` (float32): filter ``a·k + b`` should have the single moment ``(a, b)``."""
    return torch.eye(k * k).view(k * k, k, k)


def moments(weight: Tensor, m: Tensor) -> Tensor:
    """Moment matrices of a conv weight ``[F, C, k, k] -> [C, F, k, k]`` (float32, computed in float64)."""
    return torch.einsum("ai,fcij,bj->cfab", m, weight.double(), m).float()


def moment_loss(weight: Tensor, m: Tensor, targets: Tensor) -> Tensor:
    """``[C]``: ``MSE(m(W[:, c]), Δ)`` per input channel ``c`` (the loss is their sum)."""
    return ((moments(weight, m) - targets) ** 2).mean(dim=(1, 2, 3))
