"""The per-frame reference loop: how the published tables computed their numbers.

One frame at a time, as OpenSTL's ``core/metrics.py`` did (protocols-and-baselines §1.4):
numpy for MSE / MAE / PSNR, ``skimage.metrics.structural_similarity`` for SSIM and the
``lpips`` package called on one ``[1, C, H, W]`` pair for LPIPS. It is slow on purpose;
the parity tests and ``benchmarks/metrics_speed.py`` compare the batched metrics with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity

from .common import PSNR_FLOOR_MSE, ssim_settings

__all__ = ["reference_per_frame", "reference_lpips_model"]


def reference_lpips_model(weights: str | None = None) -> Any:
    """An ``lpips.LPIPS(net='alex')`` v0.1 with the same AlexNet weights vpbench uses."""
    from .lpips_metric import build_lpips

    return build_lpips(weights)


def reference_per_frame(
    pred: np.ndarray,
    true: np.ndarray,
    protocol: str = "openstl",
    metrics: tuple[str, ...] = ("mse", "mae", "psnr", "ssim", "lpips"),
    lpips_model: Any = None,
) -> dict[str, np.ndarray]:
    """Score ``[N, S, C, H, W]`` numpy arrays frame by frame; returns ``{name: [N, S]}``.

    The arithmetic is done in the arrays' dtype (pass float64 for an exact reference,
    float32 to time the published float32 loop). An exact frame gets the same capped PSNR
    as the batched metric (see :mod:`vpbench_metrics`), so the two stay comparable.
    """
    n, s = pred.shape[:2]
    out = {name: np.empty((n, s), dtype=np.float64) for name in metrics}
    clipped = np.clip(pred, 0.0, 1.0)
    ssim_kw = ssim_settings(protocol)
    reduce = np.sum if protocol == "openstl" else np.mean
    for i in range(n):
        for t in range(s):
            p, q, g = pred[i, t], clipped[i, t], true[i, t]  # [C, H, W]
            if "mse" in out:
                out["mse"][i, t] = reduce((p - g) ** 2)
            if "mae" in out:
                out["mae"][i, t] = reduce(np.abs(p - g))
            if "psnr" in out:
                mse = np.mean((q - g) ** 2)
                out["psnr"][i, t] = -10.0 * np.log10(max(mse, PSNR_FLOOR_MSE))
            if "ssim" in out:
                # OpenSTL passes [W, H, C] (swapaxes(0, 2)); SSIM is transpose-invariant.
                out["ssim"][i, t] = structural_similarity(  # type: ignore[no-untyped-call]
                    q.swapaxes(0, 2), g.swapaxes(0, 2), channel_axis=-1, **ssim_kw
                )
            if "lpips" in out:
                with torch.no_grad():
                    a = torch.from_numpy(np.ascontiguousarray(q[None], dtype=np.float32)) * 2 - 1
                    b = torch.from_numpy(np.ascontiguousarray(g[None], dtype=np.float32)) * 2 - 1
                    out["lpips"][i, t] = float(lpips_model(a, b).item())
    return out
