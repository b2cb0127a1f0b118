"""Compare S-HR-VQVAE decodings of one trained checkpoint on the same test clips.

Greedy per layer, exact best leaf (MAP over the path) and leaf sampling (temperature, top-k,
nucleus) decode the same prior; this prints MSE, SSIM, LPIPS and the predicted/true
intensity per horizon step (how much of the digits survives), plus the codebook usage of
the test clips' true codes.

    .venv/bin/python benchmarks/shrvq_decoding.py RUN_DIR [--clips 1000] [--decodings greedy best-leaf top-k]

A decoding is a name below or a spec ``sample,top_p=0.9,temperature=0.8,best_of=4,best_of_by=mass``
(the ``model.sampling`` value, then model keys).

RUN_DIR is a `vpbench run` directory of shrvq (its run.yaml and checkpoints/best.pt).
LPIPS needs VPBENCH_LPIPS_WEIGHTS (or is left out).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from vpbench.components import build_dataset, build_metrics, build_model
from vpbench.data.root import resolve_data_root
from vpbench.engine.checkpoint import load_model_state
from vpbench.engine.evaluate import evaluate
from vpbench.plugins import get_registry
from vpbench_shrvq.usage import codebook_usage

DECODINGS: dict[str, dict[str, Any]] = {
    "greedy": {"sampling": "greedy"},
    "best-leaf": {"sampling": "best-leaf"},
    "top-k": {"sampling": "sample", "top_k": 4, "temperature": 0.7},
    "nucleus": {"sampling": "sample", "top_p": 0.8, "temperature": 1.0},
}


def decoding_keys(spec: str) -> dict[str, Any]:
    """A named decoding, or ``sampling[,key=value...]`` as model config keys."""
    if spec in DECODINGS:
        return DECODINGS[spec]
    head, *rest = spec.split(",")
    keys: dict[str, Any] = {"sampling": head, "top_k": 0, "top_p": 1.0, "temperature": 1.0, "best_of": 1}
    for kv in rest:
        k, _, v = kv.partition("=")
        keys[k] = yaml.safe_load(v)
    return keys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--decodings", nargs="+", default=["greedy", "best-leaf", "top-k"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint", default="best", help="best, last or a file")
    ap.add_argument("--json", type=Path, help="also write the report here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spec = yaml.safe_load((args.run_dir / "run.yaml").read_text())
    reg = get_registry()
    cfg = spec["config"]
    ds = build_dataset(reg, spec["dataset"], cfg["dataset"], resolve_data_root(None), cfg["seed"])
    test = ds.split("test")
    metrics, unavailable = build_metrics(reg, ["mse", "ssim", "lpips"], ["openstl"])
    report: dict[str, Any] = {"run": str(args.run_dir), "clips": args.clips, "unavailable": unavailable}
    ckpt = args.run_dir / "checkpoints" / f"{args.checkpoint}.pt" if args.checkpoint in ("best", "last") else Path(args.checkpoint)
    for name in args.decodings:
        mcfg = {**cfg["model"], **decoding_keys(name)}
        model = build_model(reg, "shrvq", mcfg, ds.frame_shape, ds.context, ds.horizon)
        # the decoding keys differ from the run's config, so the config check of load_checkpoint is skipped
        payload = torch.load(ckpt, map_location="cpu", weights_only=False)
        load_model_state(model, payload["state_dict"], ckpt)
        model.eval()
        torch.manual_seed(0)
        t0 = time.monotonic()
        res = evaluate({name: model.predict}, test, metrics, context=ds.context, horizon=ds.horizon,
                       device=torch.device("cpu"), batch_size=args.batch, limit=args.clips, progress=False)[name]  # fmt: skip
        row: dict[str, Any] = {k: round(v.mean, 4) for k, v in res.metrics["openstl"].items()}
        row["seconds"] = round(time.monotonic() - t0, 1)
        # predicted / true intensity per horizon step on the first 100 clips
        clips = torch.stack([test[i] for i in range(min(100, args.clips))]).float()
        torch.manual_seed(0)
        with torch.no_grad():
            pred = model.predict(clips[:, : ds.context], ds.horizon)
        truth = clips[:, ds.context :]
        row["intensity_ratio"] = [round(float(pred[:, s].sum() / truth[:, s].sum()), 3) for s in range(ds.horizon)]
        report[name] = row
        print(name, json.dumps(row), flush=True)
    with torch.no_grad():
        frames = clips.flatten(0, 1)
        local = model.encode_indices(frames[None])
        paths = model.quantizer.paths_of(local, dim=1)[0].permute(1, 0, 2, 3)
    report["usage_100_test_clips"] = codebook_usage(paths, frames, model.config.stride, clips.shape[1])
    print(json.dumps(report["usage_100_test_clips"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
