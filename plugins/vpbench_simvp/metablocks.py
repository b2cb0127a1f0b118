"""SimVP v2's gated spatiotemporal attention (gSTA) and TAU's temporal attention unit.

Both are MetaFormer blocks over the frames stacked as channels ``x [B, D, h, w]`` (``D = T·C_S``
in the first and last block, ``C_T`` between), with batch norm, layer scales ``γ`` and
stochastic depth ``DropPath``::

    x ← x + DropPath(γ_1 ⊙ A(BN_1(x)))            attention branch
    x ← x + DropPath(γ_2 ⊙ MLP(BN_2(x)))          MLP: 1×1 (D -> rD), 3×3 depth-wise, GELU, 1×1 (rD -> D)
    A(x) = W_2 * G(GELU(W_1 * x)) + x              W_1, W_2: 1×1 convolutions

The large 21×21 receptive field is a 5×5 depth-wise convolution followed by a 7×7 depth-wise
convolution of dilation 3, ``K(u) = DW_7,d3(DW_5(u))``. The gate ``G`` is

* gSTA: ``[f, g] = W * K(u)`` (1×1 to 2D channels), ``G(u) = σ(g) ⊙ f``;
* TAU:  statical attention ``SA = W * K(u)`` (1×1), dynamical attention
  ``DA = σ(FC_2(ReLU(FC_1(AvgPool(u)))))`` (squeeze-excitation over channels, i.e. frames),
  ``G(u) = SA ⊙ DA ⊙ u``.

A block whose input and output widths differ ends with a 1×1 convolution ("reduction").
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn
from torchvision.ops import StochasticDepth

__all__ = ["MetaNet"]

Gate = Literal["gsta", "tau"]


def _dw_kernels(kernel: int, dilation: int = 3) -> tuple[int, int]:
    """Kernels ``(k_local, k_dilated)`` approximating a ``kernel``×``kernel`` field: 21 -> (5, 7)."""
    k_local = 2 * dilation - 1
    k_dil = kernel // dilation + ((kernel // dilation) % 2 - 1)
    return k_local, k_dil


class GatedLargeKernel(nn.Module):
    """gSTA gate: ``σ(g) ⊙ f`` with ``[f, g] = W_1x1 * K(u)``; ``[B, D, h, w] -> [B, D, h, w]``."""

    def __init__(self, dim: int, kernel: int, dilation: int = 3) -> None:
        super().__init__()
        k1, k2 = _dw_kernels(kernel, dilation)
        self.local = nn.Conv2d(dim, dim, k1, padding=k1 // 2, groups=dim)
        self.dilated = nn.Conv2d(dim, dim, k2, padding=dilation * (k2 - 1) // 2, groups=dim, dilation=dilation)
        self.mix = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, u: Tensor) -> Tensor:
        f, g = self.mix(self.dilated(self.local(u))).chunk(2, dim=1)
        return torch.sigmoid(g) * f


class TemporalGate(nn.Module):
    """TAU gate: ``SA ⊙ DA ⊙ u``; ``[B, D, h, w] -> [B, D, h, w]``.

    The squeeze width is ``D // max(D // 16, 4)`` as in the reference (16 for D = 512).
    """

    def __init__(self, dim: int, kernel: int, dilation: int = 3, reduction: int = 16) -> None:
        super().__init__()
        k1, k2 = _dw_kernels(kernel, dilation)
        self.local = nn.Conv2d(dim, dim, k1, padding=k1 // 2, groups=dim)
        self.dilated = nn.Conv2d(dim, dim, k2, padding=dilation * (k2 - 1) // 2, groups=dim, dilation=dilation)
        self.mix = nn.Conv2d(dim, dim, 1)
        squeeze = dim // max(dim // reduction, 4)
        self.squeeze = nn.Linear(dim, squeeze, bias=False)
        self.excite = nn.Linear(squeeze, dim, bias=False)

    def forward(self, u: Tensor) -> Tensor:
        statical = self.mix(self.dilated(self.local(u)))  # SA [B, D, h, w]
        pooled = u.mean(dim=(2, 3))  # [B, D]
        dynamical = torch.sigmoid(self.excite(torch.relu(self.squeeze(pooled))))  # DA [B, D]
        return statical * rearrange(dynamical, "b d -> b d 1 1") * u


class Attention(nn.Module):
    """``A(x) = W_2 * G(GELU(W_1 * x)) + x``."""

    def __init__(self, dim: int, kernel: int, gate: Gate) -> None:
        super().__init__()
        self.proj_in = nn.Conv2d(dim, dim, 1)
        self.gate: nn.Module = GatedLargeKernel(dim, kernel) if gate == "gsta" else TemporalGate(dim, kernel)
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj_out(self.gate(nn.functional.gelu(self.proj_in(x)))) + x


class ConvMlp(nn.Module):
    """``W_2 * GELU(DW_3(W_1 * x))`` with dropout after the activation and the output."""

    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(nn.functional.gelu(self.dw(self.fc1(x))))))


def _fan_out_init(module: nn.Module) -> None:
    """OpenSTL's block initialisation: conv ``N(0, 2 / fan_out)``, linear truncated ``N(0, 0.02²)``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MetaBlock(nn.Module):
    """One gSTA or TAU block ``[B, cin, h, w] -> [B, cout, h, w]`` (equations in the module docstring)."""

    def __init__(
        self, cin: int, cout: int, gate: Gate, *, mlp_ratio: float, drop: float, drop_path: float, kernel: int = 21
    ) -> None:
        super().__init__()
        self.gamma_attn = nn.Parameter(torch.full((cin,), 1e-2))
        self.gamma_mlp = nn.Parameter(torch.full((cin,), 1e-2))
        self.norm_attn = nn.BatchNorm2d(cin)
        self.attn = Attention(cin, kernel, gate)
        self.norm_mlp = nn.BatchNorm2d(cin)
        self.mlp = ConvMlp(cin, int(cin * mlp_ratio), drop)
        self.drop_path = StochasticDepth(drop_path, "row")  # per-sample, survivors scaled by 1 / (1 - p)
        _fan_out_init(self)
        if gate == "tau":
            # the reference replaces the attention after initialising the block: TAU's attention keeps
            # PyTorch's default initialisation
            self.attn = Attention(cin, kernel, gate)
        self.reduction = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(rearrange(self.gamma_attn, "d -> d 1 1") * self.attn(self.norm_attn(x)))
        x = x + self.drop_path(rearrange(self.gamma_mlp, "d -> d 1 1") * self.mlp(self.norm_mlp(x)))
        return self.reduction(x)


class MetaNet(nn.Module):
    """``N_T`` blocks ``[B, T·C_S] -> C_T -> … -> C_T -> T·C_S`` channels at a fixed ``h × w``.

    Stochastic depth rises linearly over blocks ``0 .. N_T-2`` from 0.01 to ``drop_path`` and
    the last block uses ``drop_path`` (so with ``drop_path = 0`` the first blocks still drop
    paths with probability up to 0.01; the reference does this too).
    """

    def __init__(
        self, channels: int, hidden: int, depth: int, gate: Gate, *, mlp_ratio: float, drop: float, drop_path: float
    ) -> None:
        super().__init__()
        rates = torch.linspace(1e-2, drop_path, depth, device="cpu").tolist()  # float32, as the reference
        rates[-1] = drop_path
        widths = [channels] + [hidden] * (depth - 1) + [channels]
        self.blocks = nn.ModuleList(
            MetaBlock(widths[i], widths[i + 1], gate, mlp_ratio=mlp_ratio, drop=drop, drop_path=rates[i])
            for i in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return x
