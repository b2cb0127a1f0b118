"""Speed and agreement of vpbench's batched metrics against the published per-frame loop.

Scores the same float32 arrays twice, under the openstl protocol:
  * reference: the loop the published tables used, one frame at a time (numpy MSE / MAE /
    PSNR, ``skimage.metrics.structural_similarity``, ``lpips`` on one [1, C, H, W] pair);
  * vpbench: the metric plugins, called once per batch of ``--batch`` sequences, as the
    harness calls them.
Prints per metric: both means, the max abs difference per frame, both times, the ratio.

    python benchmarks/metrics_speed.py [--quick] [--lpips-weights PATH] [--threads N]

Full run: 1,000 Moving-MNIST-sized sequences (10 x 1 x 64 x 64) and 100 KTH-sized ones
(20 x 1 x 128 x 128). ``--quick``: a tenth of each. LPIPS weights come from
``--lpips-weights``, else ``$VPBENCH_LPIPS_WEIGHTS``, else torchvision's hub cache;
without any LPIPS is skipped.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from vpbench_metrics.lpips_metric import LPIPS, WEIGHTS_ENV
from vpbench_metrics.pixel import MAE, MSE, PSNR
from vpbench_metrics.reference import reference_lpips_model, reference_per_frame
from vpbench_metrics.ssim import SSIM

METRICS = {"mse": MSE, "mae": MAE, "psnr": PSNR, "ssim": SSIM, "lpips": LPIPS}


def make_frames(n: int, s: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth blob targets in [0, 1] and an imperfect, unclipped prediction of them."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.standard_normal((n, s, 1, size, size)), sigma=(0, 0, 0, 3, 3))
    true = np.clip(0.5 + 4 * field, 0, 1).astype(np.float32)
    pred = np.roll(true, 1, axis=-1) + 0.05 * rng.standard_normal(true.shape).astype(np.float32)
    return pred, true


def run(name: str, pred: np.ndarray, true: np.ndarray, batch: int, lpips_model: Any) -> tuple[float, float]:
    metrics = [m for m in METRICS if m != "lpips" or lpips_model is not None]
    print(f"\n{name}: {pred.shape[0]} sequences x {pred.shape[1]} frames of {pred.shape[-2]}x{pred.shape[-1]}")
    print(f"{'metric':7} {'reference':>12} {'vpbench':>12} {'max |diff|':>11} {'ref s':>8} {'vpb s':>8} {'ratio':>7}")
    t_ref_all = t_new_all = 0.0
    for m in metrics:
        start = time.perf_counter()
        ref = reference_per_frame(pred, true, "openstl", metrics=(m,), lpips_model=lpips_model)[m]
        t_ref = time.perf_counter() - start
        metric = METRICS[m](protocol="openstl")
        start = time.perf_counter()
        got = np.concatenate(
            [
                metric.per_frame(torch.from_numpy(pred[i : i + batch]), torch.from_numpy(true[i : i + batch])).numpy()
                for i in range(0, pred.shape[0], batch)
            ]
        )
        t_new = time.perf_counter() - start
        t_ref_all += t_ref
        t_new_all += t_new
        diff = float(np.abs(got - ref).max())
        print(f"{m:7} {ref.mean():12.6f} {got.mean():12.6f} {diff:11.2e} {t_ref:8.2f} {t_new:8.2f} {t_ref / t_new:6.2f}x")
    print(f"{'all':7} {'':12} {'':12} {'':11} {t_ref_all:8.2f} {t_new_all:8.2f} {t_ref_all / t_new_all:6.2f}x")
    return t_ref_all, t_new_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sequences")
    parser.add_argument("--lpips-weights", help=f"AlexNet features state dict (default: ${WEIGHTS_ENV} or hub cache)")
    parser.add_argument("--batch", type=int, default=100, help="sequences per per_frame call (default 100)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.lpips_weights:
        os.environ[WEIGHTS_ENV] = args.lpips_weights

    reason = LPIPS().available()
    lpips_model = reference_lpips_model() if reason is None else None
    if reason is not None:
        print(f"LPIPS skipped: {reason}")
    scale = 10 if args.quick else 1
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 inputs, protocol openstl")
    totals = [
        run("Moving-MNIST-sized", *make_frames(1000 // scale, 10, 64, args.seed), args.batch, lpips_model),
        run("KTH-sized", *make_frames(100 // scale, 20, 128, args.seed + 1), max(1, args.batch // 10), lpips_model),
    ]
    ref, new = (sum(t) for t in zip(*totals))
    print(f"\ntotal: reference {ref:.2f} s, vpbench {new:.2f} s, speed ratio {ref / new:.2f}x")


if __name__ == "__main__":
    main()
