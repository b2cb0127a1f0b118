"""Time S-HR-VQVAE's cached incremental sampler against full recomputation.

Both samplers produce the same tokens (asserted here, and in tests/test_shrvq.py); the
uncached one reruns the ST-PixelCNN over frames <= f for every future voxel, the cached one
pushes one voxel through the network per step. Weights are random: speed does not depend on
training.

    .venv/bin/python benchmarks/shrvq_sampling.py                # small prior, < 2 min on 2 cores
    .venv/bin/python benchmarks/shrvq_sampling.py --prior paper  # the 948k-parameter Moving-MNIST prior

Default: a batch of 2 Moving-MNIST-sized clips (64x64x1 -> 16x16 latent grid, 3 layers of
M = 4), 4 context frames, 1 predicted frame (256 sequential voxels), greedy decoding.
"""

from __future__ import annotations

import argparse
import time

import torch

from vpbench import FrameShape
from vpbench_shrvq.model import SHRVQVAE

PRIORS = {
    # the paper's Moving-MNIST prior (configs/shrvq-mmnist.yaml)
    "paper": {},
    # a smaller prior of the same structure, so that full recomputation fits the time budget
    "small": {"prior_channels": 32, "prior_blocks": 2, "prior_res_blocks": 1, "attn_dim": 32, "attn_heads": 2},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prior", choices=sorted(PRIORS), default="small")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--context", type=int, default=4)
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = SHRVQVAE.Config(dropout=0.0, **PRIORS[args.prior])
    model = SHRVQVAE(cfg, FrameShape(1, 64, 64), args.context, args.horizon).eval()
    clips = torch.rand(args.batch, args.context, 1, 64, 64)
    prior_params = sum(p.numel() for p in model.prior.parameters())
    voxels = args.horizon * model.grid[0] * model.grid[1]
    print(
        f"prior={args.prior} ({prior_params:,} parameters), batch={args.batch}, 64x64x1 frames, "
        f"latent {model.grid[0]}x{model.grid[1]}, {args.context} -> {args.horizon} frames "
        f"({voxels} sequential voxels), threads={args.threads}"
    )
    times = {}
    out = {}
    for name, cached in (("cached", True), ("uncached", False)):
        start = time.perf_counter()
        out[name] = model.predict_indices(clips, args.horizon, cached=cached)
        times[name] = time.perf_counter() - start
        print(f"{name:>9}: {times[name]:8.2f} s  ({1e3 * times[name] / voxels:.2f} ms per voxel)")
    assert torch.equal(out["cached"], out["uncached"]), "cached and uncached samplers disagree"
    print(f"identical tokens; speed-up {times['uncached'] / times['cached']:.1f}x")


if __name__ == "__main__":
    main()
