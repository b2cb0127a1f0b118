"""Per-frame quality metrics with the literature's conventions: MSE, MAE, PSNR, SSIM, LPIPS.

Every metric takes ``pred`` (unclipped) and ``true`` (in [0, 1]) as ``[B, S, C, H, W]``
and returns ``[B, S]`` float64 on ``pred``'s device, under one of two protocols:

================  ==========================================  ==============================
metric            ``openstl`` (default: the published tables)  ``standard``
================  ==========================================  ==============================
MSE / MAE         Σ over C, H, W per frame, unclipped pred     mean over C, H, W, unclipped
PSNR              -10 log10(mean (clip(x̂) - x)²), peak 1      same
SSIM              skimage, uniform 7x7, sample cov.,           skimage, Gaussian 11x11
                  K1 .01, K2 .03, data_range 2, per channel    σ 1.5, population cov.,
                                                               data_range 1, per channel
LPIPS             AlexNet v0.1 on 2 clip(x̂) - 1, grey as RGB  same
================  ==========================================  ==============================

SSIM, PSNR and LPIPS see the prediction clipped to [0, 1]; MSE and MAE do not.

Exact frames: a frame predicted exactly has MSE 0 and an infinite PSNR. vpbench floors
the frame's MSE at 1e-10 before the log, so such a frame scores **PSNR = 100 dB**
(``common.PSNR_CAP_DB``) and no infinity reaches a mean. Every other metric is finite
there (MSE = MAE = LPIPS = 0, SSIM = 1).

NaN: a NaN anywhere in a predicted frame makes that frame's value NaN for every metric,
so the harness can report it rather than average it away.

Bad input: mismatched shapes and a ``true`` outside [0, 1] (e.g. 0-255 frames) raise
:class:`vpbench.errors.DataError` naming the shapes or the range found; an unknown
protocol raises :class:`vpbench.errors.ConfigError`.

LPIPS weights are local only (see :mod:`vpbench_metrics.lpips_metric`); without them the
metric's ``available()`` returns the reason and the harness reports it as unavailable.
"""

from __future__ import annotations

from collections.abc import Callable

import vpbench

#: name, target, higher is better, description, then how leaderboards show it: heading,
#: number format, column order (the S-HR-VQVAE paper's Table 2), rank for select_metric=auto
_METRICS = (
    ("mse", "pixel:MSE", False, "mean squared error; openstl: per-frame sum over pixels", "MSE", ".2f", 40, None),
    ("mae", "pixel:MAE", False, "mean absolute error; openstl: per-frame sum over pixels", "MAE", ".2f", 50, None),
    ("psnr", "pixel:PSNR", True, "PSNR per frame, peak 1, clipped prediction (exact frame: 100 dB)", "PSNR", ".2f", 10, None),
    ("ssim", "ssim:SSIM", True, "SSIM per frame; openstl: 7x7 uniform, data_range 2; standard: Wang et al.", "SSIM", ".4f", 20, 1),
    ("lpips", "lpips_metric:LPIPS", False, "LPIPS AlexNet v0.1 on 2x-1 (needs local AlexNet weights)", "LPIPS", ".4f", 30, 0),
)


@vpbench.hookimpl
def register_metrics(register: Callable[[vpbench.MetricSpec], None]) -> None:
    for name, target, higher, description, heading, number_format, order, rank in _METRICS:
        register(
            vpbench.MetricSpec(
                name=name,
                target=f"vpbench_metrics.{target}",
                description=description,
                higher_is_better=higher,
                protocols=("openstl", "standard"),
                display_name=heading,
                number_format=number_format,
                column_order=order,
                auto_select_rank=rank,
            )
        )
