"""Protocol constants and the input checks every metric shares."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vpbench.errors import ConfigError, DataError, FramesTooSmallError

__all__ = [
    "PROTOCOLS",
    "PSNR_FLOOR_MSE",
    "PSNR_CAP_DB",
    "TRUE_RANGE_TOL",
    "check_protocol",
    "check_pair",
    "ssim_settings",
]

#: ``openstl`` reproduces the published tables; ``standard`` is Wang et al. / per-pixel MSE.
PROTOCOLS = ("openstl", "standard")
#: A frame's MSE is floored here before the log, so an exact frame scores PSNR_CAP_DB.
PSNR_FLOOR_MSE = 1e-10
PSNR_CAP_DB = 100.0
#: ``true`` may leave [0, 1] by this much (float rounding of a resize or a normalisation).
TRUE_RANGE_TOL = 1e-4


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"unknown metric protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}"
        )
    return protocol


def ssim_settings(protocol: str) -> dict[str, Any]:
    """Keyword arguments of ``skimage.metrics.structural_similarity`` for a protocol.

    ``openstl``: 7x7 uniform window, sample covariance, data_range 2 (the float default of
    scikit-image <= 0.19 that the published tables used). ``standard``: Wang et al.'s
    11x11 Gaussian window (sigma 1.5), population covariance, data_range 1.
    """
    if check_protocol(protocol) == "openstl":
        return {"data_range": 2.0, "gaussian_weights": False, "win_size": 7,
                "use_sample_covariance": True, "K1": 0.01, "K2": 0.03}
    return {"data_range": 1.0, "gaussian_weights": True, "sigma": 1.5,
            "use_sample_covariance": False, "K1": 0.01, "K2": 0.03}


def check_pair(pred: Tensor, true: Tensor, *, min_side: int = 1) -> None:
    """Raise :class:`DataError` unless ``pred`` and ``true`` are comparable frame batches.

    Both must be float ``[B, S, C, H, W]`` of one shape; ``true`` must lie in [0, 1]
    (``pred`` is checked only for shape: it is scored unclipped, NaN included).
    """
    if pred.ndim != 5 or tuple(pred.shape) != tuple(true.shape):
        raise DataError(
            f"prediction {tuple(pred.shape)} and target {tuple(true.shape)} must both be "
            "[B, S, C, H, W] with equal shapes; check the model's horizon and frame shape"
        )
    if not (pred.is_floating_point() and true.is_floating_point()):
        raise DataError(
            f"frames must be float in [0, 1], got {pred.dtype} and {true.dtype}; divide by 255"
        )
    if min(pred.shape[-2:]) < min_side:
        raise FramesTooSmallError(
            f"frames of {pred.shape[-2]}x{pred.shape[-1]} are smaller than the "
            f"{min_side}x{min_side} window this metric needs"
        )
    if true.numel() == 0:
        return
    lo, hi = torch.aminmax(true.detach())
    lo_f, hi_f = float(lo), float(hi)
    if not (lo_f >= -TRUE_RANGE_TOL and hi_f <= 1 + TRUE_RANGE_TOL):  # NaN fails too
        hint = "; were 0-255 frames passed? divide by 255" if hi_f > 1.5 else ""
        raise DataError(
            f"target frames must be in [0, 1], found range [{lo_f:.4g}, {hi_f:.4g}]{hint}"
        )
