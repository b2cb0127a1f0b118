"""Pixel metrics: MSE, MAE (unclipped) and PSNR (clipped, peak 1), batched in float64."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from vpbench import Metric

from .common import PSNR_FLOOR_MSE, check_pair, check_protocol

__all__ = ["MSE", "MAE", "PSNR"]


class _PixelMetric(Metric):
    def __init__(self, protocol: str = "openstl") -> None:
        super().__init__(check_protocol(protocol))

    def _reduce(self, err: Tensor) -> Tensor:
        """``[B, S, C*H*W] -> [B, S]``: sum over C, H, W (openstl) or per-pixel mean (standard)."""
        if self.protocol == "openstl":
            return err.sum(dim=-1)
        return err.mean(dim=-1)


def _diff(pred: Tensor, true: Tensor, *, clip: bool = False) -> Tensor:
    """``pred - true`` in float64, flattened to ``[B, S, C*H*W]``."""
    p = pred.detach().double()
    if clip:  # in place only on a converted copy, never on the caller's tensor
        p = p.clamp(0.0, 1.0) if pred.dtype == torch.float64 else p.clamp_(0.0, 1.0)
    return (p - true.detach().double()).flatten(2)


class MSE(_PixelMetric):
    """openstl: Σ_{c,h,w} (x̂ - x)² per frame; standard: mean_{c,h,w} (x̂ - x)². x̂ unclipped."""

    name: ClassVar[str] = "mse"
    higher_is_better: ClassVar[bool] = False

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        d = _diff(pred, true)
        return self._reduce(d * d)  # d * d: torch's square() is slower on float64


class MAE(_PixelMetric):
    """openstl: Σ_{c,h,w} |x̂ - x| per frame; standard: mean_{c,h,w} |x̂ - x|. x̂ unclipped."""

    name: ClassVar[str] = "mae"
    higher_is_better: ClassVar[bool] = False

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        return self._reduce(_diff(pred, true).abs_())


class PSNR(_PixelMetric):
    """PSNR_f = -10 log10(max(mse_f, 1e-10)), mse_f = mean_{c,h,w} (clip(x̂, 0, 1) - x)².

    Peak 1, per frame (both protocols). An exact frame scores 100 dB instead of +inf.
    """

    name: ClassVar[str] = "psnr"
    higher_is_better: ClassVar[bool] = True

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        d = _diff(pred, true, clip=True)
        mse = (d * d).mean(dim=-1)
        return -10.0 * torch.log10(mse.clamp(min=PSNR_FLOOR_MSE))
