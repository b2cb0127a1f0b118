"""Patch reshaping (PredRNN's ``reshape_patch``): trade spatial size for channels.

A frame ``[C, H, W]`` becomes ``[C·p·p, H/p, W/p]``: every non-overlapping ``p × p`` patch is
stacked into channels, so the recurrent cells run at 1/p of the resolution. The map is a
permutation of pixels, so a mean-squared error is the same in either layout.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor

from vpbench.errors import ConfigError

__all__ = ["check_patch", "to_patches", "from_patches"]


def check_patch(height: int, width: int, patch: int) -> tuple[int, int]:
    """Return the patched spatial size ``(H/p, W/p)``; ConfigError when ``p`` does not divide both."""
    if height % patch or width % patch:
        raise ConfigError(
            f"model.patch_size={patch} does not divide the frame size {height}x{width}; "
            f"choose a patch size that divides both (e.g. 4 for 64x64 Moving-MNIST, 2 for 128x128 KTH)"
        )
    return height // patch, width // patch


def to_patches(x: Tensor, patch: int) -> Tensor:
    """``[B, T, C, H, W] -> [B, T, C·p·p, H/p, W/p]``."""
    return rearrange(x, "b t c (h p1) (w p2) -> b t (c p1 p2) h w", p1=patch, p2=patch)


def from_patches(x: Tensor, patch: int) -> Tensor:
    """``[B, T, C·p·p, H/p, W/p] -> [B, T, C, H, W]``."""
    return rearrange(x, "b t (c p1 p2) h w -> b t c (h p1) (w p2)", p1=patch, p2=patch)
