"""SSIM (Wang et al. 2004) per frame, equal to scikit-image's ``structural_similarity``.

With a window w (7x7 uniform, or 11x11 Gaussian σ = 1.5), local moments
    μ_x = w * x,  σ_x² = k (w * x² - μ_x²),  σ_xy = k (w * xy - μ_x μ_y)
(k = N/(N-1) for the sample covariance of an N-pixel window, else 1) and
C1 = (K1 L)², C2 = (K2 L)² with L the data range,
    S = (2 μ_x μ_y + C1)(2 σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2)),
averaged over the pixels whose window lies inside the frame (scikit-image crops the
window radius from every border, so the padding mode never matters: every filter here
is a 'valid' one), then over channels.

Two exact routes, both float64: on CPU, numpy adds over flat buffers of a few frames
(each filter pass a handful of whole-buffer operations, no call per line; 1.52-1.64x the
per-frame scikit-image loop at 128x128 and 2.66-2.73x at 64x64 in two runs of
``benchmarks/metrics_speed.py --quick --threads 1`` under a load of 8-12 on two cores,
values within 1e-14 of scipy's filters), and grouped separable ``conv2d`` on any other device.
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

Route = Literal["auto", "numpy", "torch"]
#: pixels per chunk: the four float64 maps of one 128x128 frame (four of 64x64), their
#: filtered copy and two scratch arrays (2 MiB) stay in the CPU's L2 cache; on this CPU,
#: under load, 1-2 frames of 128x128 were fastest and 8 or more 1.2-1.8x slower
_CPU_CHUNK_PIXELS = 128 * 128


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


def _power_sums(src: np.ndarray, scratch: list[np.ndarray], stride: int, k: int) -> dict[int, np.ndarray]:
    """Sums of ``p`` consecutive taps ``stride`` apart, for each power of two ``p <= k``, by doubling.

    ``sums[p][j] = src[j] + src[j + stride] + ... + src[j + (p - 1) stride]``, valid for
    ``j < len(src) - (p - 1) stride`` (the arrays are that long); one add per element per level.
    """
    sums = {1: src}
    p = 1
    while 2 * p <= k:
        prev = sums[p]
        n = len(src) - (2 * p - 1) * stride
        out = scratch[len(sums) - 1][:n]
        np.add(prev[:n], prev[p * stride : p * stride + n], out=out)
        p *= 2
        sums[p] = out
    return sums


def _smooth_flat(src: np.ndarray, dst: np.ndarray, scratch: list[np.ndarray], stride: int, win: np.ndarray,
                 uniform: bool) -> None:
    """``dst[j] = sum_q w[q] src[j + q stride]`` on flat arrays, for every ``j`` the taps reach.

    ``stride`` 1 filters along rows, ``stride`` W along columns; positions whose taps cross a
    row or frame boundary get meaningless (finite) values, which the caller crops. A uniform
    window gives the plain sum of its ``k`` taps (the caller divides), from power-of-two
    partial sums (``k = 7``: three adds per element instead of six); a symmetric window
    pairs its taps as ``scipy.ndimage.correlate1d`` does.
    """
    k = len(win)
    span = len(src) - (k - 1) * stride
    out = dst[:span]
    if uniform:
        sums = _power_sums(src, scratch, stride, k)
        parts, offset = [], 0
        for p in sorted(sums, reverse=True):  # k's binary digits: 7 = 4 + 2 + 1
            if k & p:
                parts.append(sums[p][offset * stride : offset * stride + span])
                offset += p
        if len(parts) == 1:
            out[...] = parts[0]
            return
        np.add(parts[0], parts[1], out=out)
        for part in parts[2:]:
            out += part
        return
    r = k // 2
    np.multiply(src[r * stride : r * stride + span], win[r], out=out)
    pair = scratch[0][:span]
    for q in range(r):
        np.add(src[q * stride : q * stride + span], src[(k - 1 - q) * stride : (k - 1 - q) * stride + span], out=pair)
        pair *= win[q]
        out += pair


def ssim_numpy(x: np.ndarray, y: np.ndarray, settings: dict[str, Any], *, clip_x: bool = False) -> np.ndarray:
    """SSIM of ``[N, H, W]`` frame pairs in float64 with numpy: ``[N]``.

    Whole frames, ``_CPU_CHUNK_PIXELS`` pixels at a time, go into one preallocated float64
    buffer of four maps, ``x, y, x² + y², xy`` (``clip_x`` clips ``x`` to [0, 1] on the way;
    SSIM needs only σx² + σy², so x² and y² are filtered as their sum). Each filter pass
    is a few adds over the whole flat buffer (rows: taps 1 apart; columns: taps W apart),
    no per-line calls. A uniform window is left unnormalised: the sums are g = k² times the
    means, and the constants are scaled to match,
        S = (2 sx sy + g² C1)(2 c (g sxy - sx sy) + g² C2) / ((sx² + sy² + g² C1)(c (g sq - sx² - sy²) + g² C2)),
    which is the SSIM of the means (both factors scale by g⁴).
    """
    win = window_1d(settings)
    k = len(win)
    uniform = not settings["gaussian_weights"]
    n_win = k * k
    cov = n_win / (n_win - 1) if settings["use_sample_covariance"] else 1.0
    g = float(n_win) if uniform else 1.0
    c1 = g * g * (settings["K1"] * settings["data_range"]) ** 2
    c2 = g * g * (settings["K2"] * settings["data_range"]) ** 2

    n, h, w = x.shape
    result = np.empty(n, dtype=np.float64)
    chunk = max(1, min(n, _CPU_CHUNK_PIXELS // (h * w)))
    # zero-filled once: the taps past a partial last chunk read finite values
    buf = np.zeros((4, chunk, h, w), dtype=np.float64)
    tmp = np.zeros_like(buf)
    scratch = [np.zeros(buf.size, dtype=np.float64) for _ in range(max(1, k.bit_length() - 1))]
    flat, flat_tmp = buf.reshape(-1), tmp.reshape(-1)
    for i in range(0, n, chunk):
        j = min(n, i + chunk) - i
        a, b, sq, sp = buf[0, :j], buf[1, :j], buf[2, :j], buf[3, :j]
        if clip_x:
            np.clip(x[i : i + j], 0.0, 1.0, out=a)  # converts to float64 on the way
        else:
            a[...] = x[i : i + j]
        b[...] = y[i : i + j]
        np.multiply(a, b, out=sp)
        np.multiply(a, a, out=sq)
        bb = tmp[0, :j]
        np.multiply(b, b, out=bb)
        sq += bb
        _smooth_flat(flat, flat_tmp, scratch, 1, win, uniform)  # along W
        _smooth_flat(flat_tmp, flat, scratch, w, win, uniform)  # along H
        sx, sy, sq, sp = buf[:, :j, : h - k + 1, : w - k + 1]  # the 'valid' region
        num = sx * sy
        den = sx * sx
        den += sy * sy
        sp *= g
        sp -= num
        sp *= 2 * cov
        sp += c2  # g² (2 σxy + C2)
        num *= 2
        num += c1  # g² (2 μx μy + C1)
        sq *= g
        sq -= den
        sq *= cov
        sq += c2  # g² (σx² + σy² + C2)
        den += c1  # g² (μx² + μy² + C1)
        num *= sp
        den *= sq
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
            route = "numpy" if pred.device.type == "cpu" else "torch"
        if route == "numpy":
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
