"""SimVP v1's translator: a U-Net of Inception blocks over the frames stacked as channels.

The ``T`` encoded frames ``[B, T, C_S, H', W']`` are stacked into ``T·C_S`` channels, so one
2D network mixes space and time. An Inception block (``gInception_ST``) is a 1×1 bottleneck to
``C_T/2`` channels followed by the *sum* of grouped convolutions of kernel 3, 5, 7 and 11::

    u = W_1x1 * x,     y = Σ_k LeakyReLU_0.2(GN_g(W^g_k * u))      k ∈ {3, 5, 7, 11}, g groups

``N_T`` encoder blocks keep their outputs as skips; ``N_T`` decoder blocks take the previous
output concatenated with the mirrored skip (channels ``2·C_T``), the last one back to ``T·C_S``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["IncepU", "inception_groups"]


def inception_groups(hidden: int, groups: int) -> int:
    """Groups the branch convolutions use: ``groups``, or 1 when it does not divide ``hidden``."""
    return groups if hidden % groups == 0 else 1


class Inception(nn.Module):
    """``[B, cin, h, w] -> [B, cout, h, w]``: bottleneck to ``hidden``, sum of grouped k×k branches."""

    def __init__(self, cin: int, hidden: int, cout: int, kernels: Sequence[int], groups: int) -> None:
        super().__init__()
        g = inception_groups(hidden, groups)
        self.bottleneck = nn.Conv2d(cin, hidden, 1)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(hidden, cout, k, padding=k // 2, groups=g), nn.GroupNorm(g, cout), nn.LeakyReLU(0.2))
            for k in kernels
        )

    def forward(self, x: Tensor) -> Tensor:
        u = self.bottleneck(x)
        y = self.branches[0](u)
        for branch in self.branches[1:]:
            y = y + branch(u)
        return y


class IncepU(nn.Module):
    """``[B, T·C_S, h, w] -> [B, T·C_S, h, w]`` through ``N_T`` down and ``N_T`` up Inception blocks."""

    def __init__(self, channels: int, hidden: int, depth: int, kernels: Sequence[int], groups: int) -> None:
        super().__init__()
        half = hidden // 2
        self.enc = nn.ModuleList(
            Inception(channels if i == 0 else hidden, half, hidden, kernels, groups) for i in range(depth)
        )
        self.dec = nn.ModuleList(
            Inception(hidden if i == 0 else 2 * hidden, half, channels if i == depth - 1 else hidden, kernels, groups)
            for i in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        skips: list[Tensor] = []
        z = x
        for block in self.enc:
            z = block(z)
            skips.append(z)
        z = self.dec[0](z)  # the deepest output goes straight in, without its own skip
        for block, skip in zip(self.dec[1:], reversed(skips[:-1])):
            z = block(torch.cat([z, skip], dim=1))
        return z
