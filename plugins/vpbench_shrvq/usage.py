"""Codebook usage of a set of frames: distinct codes and perplexity per level, split into
background and foreground latent cells, and how often a background cell's finest code flips
between consecutive frames (a static background should keep one code path)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["perplexity", "codebook_usage"]


def perplexity(paths: Tensor) -> float:
    """exp(entropy) of the empirical distribution of ``paths [N]`` (1 when N is 0)."""
    if paths.numel() == 0:
        return 1.0
    p = torch.bincount(paths).double()
    p = p[p > 0] / paths.numel()
    return float(math.exp(-(p * p.log()).sum()))


def codebook_usage(paths: Tensor, frames: Tensor, stride: int, clip_len: int, fg_level: float = 0.05) -> dict[str, Any]:
    """``paths [N, n, h, w]`` global paths of ``frames [N, C, H, W]`` (consecutive runs of
    ``clip_len`` frames from one clip each). A cell is foreground when its stride x stride
    patch has a pixel above ``fg_level``."""
    fg = F.max_pool2d(frames.amax(1, keepdim=True), stride)[:, 0] > fg_level  # [N, h, w]
    n_levels = paths.shape[1]
    out: dict[str, Any] = {"foreground_share": round(float(fg.float().mean()), 4)}
    for name, mask in (("all", torch.ones_like(fg)), ("background", ~fg), ("foreground", fg)):
        rows = []
        for i in range(n_levels):
            g = paths[:, i][mask]
            rows.append({"codes_used": int(g.unique().numel()), "perplexity": round(perplexity(g), 3)})
        out[name] = rows
    n = paths.shape[0] - paths.shape[0] % clip_len
    if n >= 2 * clip_len or (n == clip_len and clip_len > 1):
        finest = paths[:n, -1].view(-1, clip_len, *paths.shape[2:])
        bg = ~fg[:n].view(-1, clip_len, *fg.shape[1:])
        still = bg[:, 1:] & bg[:, :-1]  # background in both frames
        flips = (finest[:, 1:] != finest[:, :-1]) & still
        out["background_finest_flip_rate"] = round(float(flips.sum()) / max(int(still.sum()), 1), 4)
    return out
