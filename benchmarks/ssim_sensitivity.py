"""How SSIM (openstl protocol) scores simple edits of the true future on a dataset's test clips.

Prints the mean SSIM of: the truth, a blank frame, the truth shifted sideways by k pixels,
scaled in intensity, with a constant offset, and box-blurred. It shows what beating `blank`
on SSIM demands of a forecast on a dataset of bright digits on a black background.

    .venv/bin/python benchmarks/ssim_sensitivity.py [--clips 200]
    .venv/bin/python benchmarks/ssim_sensitivity.py --dataset mmnist --data-root DATA \
        --set dataset.test_set=generated --set dataset.generated_test_length=1000 --clips 1000 \
        --only blank --only "shifted 3 px"
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from vpbench.components import build_dataset
from vpbench.config import apply_overrides
from vpbench.data.root import resolve_data_root
from vpbench.plugins import get_registry
from vpbench_metrics.common import ssim_settings
from vpbench_metrics.ssim import ssim_torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--dataset", default="glyphs")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="dataset.KEY=VALUE", help="dataset config override")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help='score only these edits, e.g. --only blank --only "shifted 3 px"')
    args = ap.parse_args()
    torch.set_num_threads(1)
    overrides = apply_overrides({}, args.set).get("dataset", {})
    ds = build_dataset(get_registry(), args.dataset, overrides, resolve_data_root(args.data_root), 0)
    test = ds.split("test")
    future = torch.stack([test[i] for i in range(args.clips)])[:, ds.context :].double()  # [B, S, C, H, W]
    frames = future.flatten(0, 2)  # [B*S*C, H, W]
    settings = ssim_settings("openstl")

    def score(name: str, pred: torch.Tensor) -> None:
        if args.only and name not in args.only:
            return
        print(f"{name:22s} SSIM {float(ssim_torch(pred, frames, settings).mean()):.4f}")

    score("truth", frames)
    score("blank", torch.zeros_like(frames))
    for k in (1, 2, 3, 4, 6):
        score(f"shifted {k} px", torch.roll(frames, k, dims=-1))
    for a in (0.8, 0.5, 0.25):
        score(f"intensity x{a}", frames * a)
    for o in (0.005, 0.01, 0.02):
        score(f"offset +{o}", (frames + o).clamp(0, 1))
    for k in (3, 5):
        box = torch.ones(1, 1, k, k, dtype=frames.dtype) / (k * k)
        score(f"box blur {k}x{k}", F.conv2d(frames[:, None], box, padding=k // 2)[:, 0])


if __name__ == "__main__":
    main()
