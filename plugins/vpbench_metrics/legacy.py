"""The batched metrics as they were before issue 23, kept as the reference of the fast ones.

``benchmarks/eval_speed.py`` times them against the current metrics and
``tests/test_eval_speed_parity.py`` checks that both give the same values:

* MSE / MAE / PSNR: the whole batch converted to float64 at once;
* SSIM: scipy's filters on a stacked ``[5, n, H, W]`` float64 array of 64 frames of 64x64;
* LPIPS: prediction and target concatenated into one AlexNet pass, per predictor (the
  target's features recomputed for each).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from vpbench import Metric

from .common import PSNR_FLOOR_MSE, check_pair
from .lpips_metric import _CHUNK, LPIPS, MIN_SIDE
from .pixel import MAE, MSE, PSNR
from .ssim import SSIM, _as_numpy, _combine, window_1d

__all__ = ["legacy_metric", "legacy_ssim_numpy"]


def _diff(pred: Tensor, true: Tensor, *, clip: bool = False) -> Tensor:
    p = pred.detach().double()
    if clip:
        p = p.clamp(0.0, 1.0) if pred.dtype == torch.float64 else p.clamp_(0.0, 1.0)
    return (p - true.detach().double()).flatten(2)


class LegacyMSE(MSE):
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        d = _diff(pred, true)
        return self._reduce(d * d)


class LegacyMAE(MAE):
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        return self._reduce(_diff(pred, true).abs_())


class LegacyPSNR(PSNR):
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true)
        d = _diff(pred, true, clip=True)
        return -10.0 * torch.log10((d * d).mean(dim=-1).clamp(min=PSNR_FLOOR_MSE))


def legacy_ssim_numpy(x: np.ndarray, y: np.ndarray, settings: dict[str, Any], *, clip_x: bool = False) -> np.ndarray:
    """The former ``ssim_numpy``: chunks of 64x64x64 pixels, a stacked moment array."""
    from scipy.ndimage import correlate1d, uniform_filter1d

    win = window_1d(settings)
    k = len(win)
    r = k // 2

    def smooth(m: np.ndarray, axis: int) -> np.ndarray:
        if settings["gaussian_weights"]:
            out: np.ndarray = correlate1d(m, win, axis=axis)
        else:
            out = uniform_filter1d(m, k, axis=axis)
        return out

    result = np.empty(x.shape[0], dtype=np.float64)
    chunk = max(1, 64 * 64 * 64 // (x.shape[-2] * x.shape[-1]))
    for i in range(0, x.shape[0], chunk):
        a = x[i : i + chunk].astype(np.float64)
        b = y[i : i + chunk].astype(np.float64)
        if clip_x:
            np.clip(a, 0.0, 1.0, out=a)
        m = np.stack([a, b, a * a, b * b, a * b])
        m = smooth(m, -1)[..., r:-r]
        m = smooth(m, -2)[..., r:-r, :]
        result[i : i + chunk] = _combine(list(m), settings, k * k).mean(axis=(-2, -1))
    return result


class LegacySSIM(SSIM):
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        if pred.device.type != "cpu":
            return super().per_frame(pred, true)
        check_pair(pred, true, min_side=self.window)
        b, s, c, h, w = pred.shape
        p = _as_numpy(pred.reshape(b * s * c, h, w))
        t = _as_numpy(true.reshape(b * s * c, h, w))
        return torch.from_numpy(legacy_ssim_numpy(p, t, self.settings, clip_x=True)).reshape(b, s, c).mean(dim=2)


class LegacyLPIPS(LPIPS):
    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true, min_side=MIN_SIDE)
        b, s, c, h, w = pred.shape
        net = self._network(pred.device)
        p = pred.float().clamp(0.0, 1.0).reshape(b * s, c, h, w)
        t = true.float().reshape(b * s, c, h, w)
        out = []
        for i in range(0, b * s, _CHUNK):
            n = p[i : i + _CHUNK].shape[0]
            f = net.features(torch.cat([p[i : i + _CHUNK], t[i : i + _CHUNK]]))  # one pass of 2n frames
            out.append(net.distance([x[:n] for x in f], [x[n:] for x in f]))
        return torch.cat(out).double().reshape(b, s)

    def per_frame_many(self, preds: Any, true: Tensor) -> list[Tensor]:
        return [self.per_frame(p, true) for p in preds]


_LEGACY: dict[str, type[Metric]] = {"mse": LegacyMSE, "mae": LegacyMAE, "psnr": LegacyPSNR, "ssim": LegacySSIM, "lpips": LegacyLPIPS}


def legacy_metric(metric: Metric) -> Metric:
    """The pre-issue-23 implementation of a first-party metric (same protocol and weights)."""
    cls = _LEGACY[metric.name]
    if isinstance(metric, LPIPS):
        return LegacyLPIPS(metric.protocol, metric.weights)
    return cls(metric.protocol)
