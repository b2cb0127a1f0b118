"""How clean S-HR-VQVAE's frames are: SSIM and background noise of its reconstructions of the
true future (encode, quantise, decode: the ceiling of any forecast) and of its predictions.

For the first N glyph test clips it prints, against the true future frames: blank, the
reconstruction, and the prediction (the run's decoding), each with mean SSIM (openstl), SSIM
per predicted frame, MSE per frame, and the share of black true pixels predicted above 0.01.

    .venv/bin/python benchmarks/shrvq_reconstruction.py RUN_DIR [--clips 100]

RUN_DIR is a `vpbench run` directory of shrvq (run.yaml and checkpoints/best.pt).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from vpbench.components import build_dataset, build_model
from vpbench.data.root import resolve_data_root
from vpbench.engine.checkpoint import load_model_state
from vpbench.plugins import get_registry
from vpbench_metrics.common import ssim_settings
from vpbench_metrics.ssim import ssim_torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--clips", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec = yaml.safe_load((args.run_dir / "run.yaml").read_text())
    cfg, reg = spec["config"], get_registry()
    ds = build_dataset(reg, spec["dataset"], cfg["dataset"], resolve_data_root(None), cfg["seed"])
    model = build_model(reg, "shrvq", cfg["model"], ds.frame_shape, ds.context, ds.horizon)
    ckpt = args.run_dir / "checkpoints" / "best.pt"
    load_model_state(model, torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"], ckpt)
    model.eval()
    test = ds.split("test")
    clips = torch.stack([test[i] for i in range(args.clips)]).float()
    context, future = clips[:, : ds.context], clips[:, ds.context :]
    settings = ssim_settings("openstl")
    black = future == 0

    def show(name: str, pred: torch.Tensor) -> None:
        b, s = pred.shape[:2]
        ssim = ssim_torch(pred.flatten(0, 2).double(), future.flatten(0, 2).double(), settings).view(b, s, -1).mean((0, 2))
        mse = (pred - future).pow(2).flatten(2).sum(-1).mean()
        noisy = (pred[black] > 0.01).float().mean()
        print(f"{name:10s} SSIM {ssim.mean():.4f}  per frame {[round(float(v), 3) for v in ssim]}  "
              f"MSE {mse:.1f}  black pixels > 0.01: {100 * noisy:.1f} %")  # fmt: skip

    torch.manual_seed(0)
    with torch.no_grad():
        recon = model.decode_indices(model.encode_indices(future)).clamp(0, 1)
        pred = model.predict(context, ds.horizon)
    show("blank", torch.zeros_like(future))
    show("recon", recon)
    show("predicted", pred)


if __name__ == "__main__":
    main()
