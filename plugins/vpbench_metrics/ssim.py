"""SSIM (Wang et al. 2004) per frame, equal to scikit-image's ``structural_similarity``.

With a window w (7x7 uniform, or 11x11 Gaussian σ = 1.5), local moments
    μ_x = w * x,  σ_x² = k (w * x² - μ_x²),  σ_xy = k (w * xy - μ_x μ_y)
(k = N/(N-1) for the sample covariance of an N-pixel window, else 1) and
C1 = (K1 L)², C2 = (K2 L)² with L the data range,
    S = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)),
averaged over the pixels whose window lies inside the frame (scikit-image crops the
window radius from every border, so the padding mode never matters: every filter here
is a 'valid' one), then over channels.

Two exact routes, both float64: scipy's separable filters on CPU (the per-frame
scikit-image loop is already compute-bound at 64x64, so the win is batching the five
moment maps into one call per chunk), grouped separable ``conv2d`` on any other device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vpbench import Metric

from .common import check_pair, check_protocol, ssim_settings

__all__ = ["SSIM", "window_1d", "ssim_numpy", "ssim_torch"]

Route = Literal["auto", "scipy", "torch"]
#: pixels per scipy call: five float64 moment maps of 8 frames of 64x64 fit the CPU caches
_CPU_CHUNK_PIXELS = 8 * 64 * 64


def window_1d(settings: dict[str, Any]) -> np.ndarray:
    """The separable 1-D window scikit-image uses (weights sum to 1)."""
    if settings["gaussian_weights"]:
        sigma = settings["sigma"]
        radius = int(3.5 * sigma + 0.5)  # scikit-image's truncate = 3.5, as ndimage rounds it
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        phi: np.ndarray = np.exp(-0.5 / sigma**2 * x**2)
        weights: np.ndarray = phi / phi.sum()
        return weights
    size = settings["win_size"]
    return np.full(size, 1.0 / size)


def _combine(moments: Sequence[Any], settings: dict[str, Any], n_win: int) -> Any:
    """The SSIM map from the filtered moments (numpy arrays or tensors alike)."""
    ux, uy, uxx, uyy, uxy = moments
    k = n_win / (n_win - 1) if settings["use_sample_covariance"] else 1.0
    c1 = (settings["K1"] * settings["data_range"]) ** 2
    c2 = (settings["K2"] * settings["data_range"]) ** 2
    vx = k * (uxx - ux * ux)
    vy = k * (uyy - uy * uy)
    vxy = k * (uxy - ux * uy)
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


def ssim_numpy(x: np.ndarray, y: np.ndarray, settings: dict[str, Any], *, clip_x: bool = False) -> np.ndarray:
    """SSIM of ``[N, H, W]`` frame pairs with scipy's filters, in float64: ``[N]``.

    Works ``_CPU_CHUNK_PIXELS`` pixels (whole frames) at a time in one preallocated float64 buffer
    (``clip_x`` clips ``x`` to [0, 1] on the way), and forms the SSIM map in place, so
    the temporaries stay in the CPU caches.
    """
    from scipy.ndimage import correlate1d, uniform_filter1d

    win = window_1d(settings)
    k = len(win)
    r = k // 2
    n_win = k * k
    cov = n_win / (n_win - 1) if settings["use_sample_covariance"] else 1.0
    c1 = (settings["K1"] * settings["data_range"]) ** 2
    c2 = (settings["K2"] * settings["data_range"]) ** 2

    def smooth(m: np.ndarray, axis: int) -> np.ndarray:
        if settings["gaussian_weights"]:
            out: np.ndarray = correlate1d(m, win, axis=axis)
        else:
            out = uniform_filter1d(m, k, axis=axis)  # running sum, as scikit-image's uniform_filter
        return out

    n, h, w = x.shape
    result = np.empty(n, dtype=np.float64)
    chunk = max(1, min(n, _CPU_CHUNK_PIXELS // (h * w)))
    buf = np.empty((5, chunk, h, w), dtype=np.float64)
    for i in range(0, n, chunk):
        j = min(n, i + chunk) - i
        m = buf[:, :j]
        a, b = m[0], m[1]
        a[...] = x[i : i + j]
        if clip_x:
            np.clip(a, 0.0, 1.0, out=a)
        b[...] = y[i : i + j]
        np.multiply(a, a, out=m[2])
        np.multiply(b, b, out=m[3])
        np.multiply(a, b, out=m[4])
        f = smooth(m, -1)[..., r:-r]
        f = smooth(f, -2)[..., r:-r, :]  # 'valid' region [5, j, H-2r, W-2r]
        ux, uy, uxx, uyy, uxy = f
        # S = (2 ux uy + C1)(2 k (uxy - ux uy) + C2) / ((ux² + uy² + C1)(k (uxx + uyy - ux² - uy²) + C2))
        num = ux * uy
        den = ux * ux
        den += uy * uy
        uxy -= num
        uxy *= 2 * cov
        uxy += c2  # 2 σxy + C2
        num *= 2
        num += c1  # 2 μx μy + C1
        uxx += uyy
        uxx -= den
        uxx *= cov
        uxx += c2  # σx² + σy² + C2
        den += c1  # μx² + μy² + C1
        num *= uxy
        den *= uxx
        num /= den
        result[i : i + j] = num.mean(axis=(-2, -1))
    return result


def ssim_torch(x: Tensor, y: Tensor, settings: dict[str, Any]) -> Tensor:
    """SSIM of ``[N, H, W]`` float64 frame pairs with grouped ``conv2d`` on their device: ``[N]``."""
    win1 = torch.as_tensor(window_1d(settings), dtype=torch.float64, device=x.device)
    k = win1.numel()
    m = torch.stack([x, y, x * x, y * y, x * y], dim=1)  # [N, 5, H, W]
    m = F.conv2d(m, win1.view(1, 1, 1, k).expand(5, 1, 1, k), groups=5)  # along W, valid
    m = F.conv2d(m, win1.view(1, 1, k, 1).expand(5, 1, k, 1), groups=5)  # along H, valid
    s: Tensor = _combine(m.unbind(1), settings, k * k)
    return s.mean(dim=(-2, -1))


def _as_numpy(x: Tensor) -> np.ndarray:
    x = x.detach().cpu()
    if x.dtype not in (torch.float32, torch.float64):  # half / bfloat16: numpy has no bfloat16
        x = x.float()
    return x.numpy()


class SSIM(Metric):
    """SSIM per frame on clip(x̂, 0, 1) and x; protocol picks window and data range.

    ``openstl``: uniform 7x7, sample covariance, data_range 2 (the published tables).
    ``standard``: Gaussian 11x11 σ 1.5, population covariance, data_range 1 (Wang et al.).
    """

    name: ClassVar[str] = "ssim"
    version: ClassVar[str] = "1"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, protocol: str = "openstl", route: Route = "auto") -> None:
        super().__init__(check_protocol(protocol))
        self.settings = ssim_settings(protocol)
        self.route = route
        self.window = len(window_1d(self.settings))

    @torch.no_grad()
    def per_frame(self, pred: Tensor, true: Tensor) -> Tensor:
        check_pair(pred, true, min_side=self.window)
        b, s, c, h, w = pred.shape
        route = self.route
        if route == "auto":
            route = "scipy" if pred.device.type == "cpu" else "torch"
        if route == "scipy":
            p = _as_numpy(pred.reshape(b * s * c, h, w))
            t = _as_numpy(true.reshape(b * s * c, h, w))
            per_channel = torch.from_numpy(ssim_numpy(p, t, self.settings, clip_x=True))
        else:
            per_channel = ssim_torch(
                pred.detach().double().clamp(0.0, 1.0).reshape(b * s * c, h, w),
                true.detach().double().reshape(b * s * c, h, w),
                self.settings,
            )
        return per_channel.to(pred.device).reshape(b, s, c).mean(dim=2)
