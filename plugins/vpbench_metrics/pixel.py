"""Pixel metrics: MSE, MAE (unclipped) and PSNR (clipped, peak 1), batched in float64.

The float64 arithmetic is done chunk by chunk (``_CHUNK_FRAMES`` frames at a time), so no
full-size float64 copy of the batch is made and the temporaries stay in the CPU caches;
the values are bit for bit those of the whole-batch float64 computation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from vpbench import Metric

from .common import PSNR_FLOOR_MSE, check_pair, check_protocol

__all__ = ["MSE", "MAE", "PSNR"]


class _PixelMetric(Metric):
    version: ClassVar[str] = "1"

    def __init__(self, protocol: str = "openstl") -> None:
        super().__init__(check_protocol(protocol))

    def _reduce(self, err: Tensor) -> Tensor:
        """``[B, S, C*H*W] -> [B, S]``: sum over C, H, W (openstl) or per-pixel mean (standard)."""
        if self.protocol == "openstl":
            return err.sum(dim=-1)
        return err.mean(dim=-1)


#: frames per float64 chunk: 256 frames of 64x64 are 8 MiB of float64
_CHUNK_FRAMES = 256


def _per_frame(pred: Tensor, true: Tensor, op: Callable[[Tensor], Tensor], *, clip: bool = False) -> Tensor:
    """``op(pred - true)`` per frame, ``[B, S, K] -> [B, S]``, in float64 chunk by chunk.

    ``pred - true`` is formed in float64 from the inputs' values (as a whole-batch
    ``.double()`` would), on ``_CHUNK_FRAMES`` frames at a time; ``clip`` clips ``pred``
    to [0, 1] on the copy, never on the caller's tensor.
    """
    b, s = pred.shape[:2]
    p = pred.detach().reshape(b * s, -1)
    t = true.detach().reshape(b * s, -1)
    out = torch.empty(b * s, dtype=torch.float64, device=pred.device)
    for i in range(0, b * s, _CHUNK_FRAMES):
        x = p[i : i + _CHUNK_FRAMES].to(torch.float64, copy=True)
        if clip:
            x.clamp_(0.0, 1.0)
        x.sub_(t[i : i + _CHUNK_FRAMES])
        out[i : i + _CHUNK_FRAMES] = op(x)
    return out.reshape(b, s)


class MSE(_PixelMetric):
    """openstl: Σ_{c,h,w} (x̂ - x)² per frame; standard: mean_{c,h,w} (x̂ - x)². x̂ unclipped."""

    name: ClassVar[str] = "mse"
    higher_is_better: ClassVar[bool] = False

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        return _per_frame(pred, true, lambda d: self._reduce(d.mul_(d)))


class MAE(_PixelMetric):
    """openstl: Σ_{c,h,w} |x̂ - x| per frame; standard: mean_{c,h,w} |x̂ - x|. x̂ unclipped."""

    name: ClassVar[str] = "mae"
    higher_is_better: ClassVar[bool] = False

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        return _per_frame(pred, true, lambda d: self._reduce(d.abs_()))


class PSNR(_PixelMetric):
    """PSNR_f = -10 log10(max(mse_f, 1e-10)), mse_f = mean_{c,h,w} (clip(x̂, 0, 1) - x)².

    Peak 1, per frame (both protocols). An exact frame scores 100 dB instead of +inf.
    """

    name: ClassVar[str] = "psnr"
    higher_is_better: ClassVar[bool] = True

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        mse = _per_frame(pred, true, lambda d: d.mul_(d).mean(dim=-1), clip=True)
        return -10.0 * torch.log10(mse.clamp(min=PSNR_FLOOR_MSE))
