"""Throughput of the full ConvLSTM / PredRNN configs: train-step time and inference sequences/s.

Builds each model from ``configs/<model>-<dataset>.yaml`` and times, on random clips,
one Adam training step (the full T+S-1 step rollout with scheduled sampling) and
``predict`` (T context frames in, S out, no gradients), after untimed warm-up calls on CUDA.
On CUDA it also times bf16 autocast. The published figures are OpenSTL's V100 FPS
(sequences/s of inference, batch 100 at 64x64) for Moving-MNIST 10 -> 10.

    .venv/bin/python benchmarks/rnn_throughput.py                  # CPU, MMNIST, ~40 s on 2 idle cores (10x more on a loaded machine)
    .venv/bin/python benchmarks/rnn_throughput.py --device cuda --batch 16 --infer-batch 100 --steps 10
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import yaml
from tabulate import tabulate

import vpbench
from vpbench_rnn.convlstm import ConvLSTM
from vpbench_rnn.predrnn import PredRNN
from vpbench_rnn.rollout import RecurrentPredictor

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MODELS: dict[str, type[RecurrentPredictor]] = {"convlstm": ConvLSTM, "predrnn": PredRNN}
#: dataset -> (frame shape, context, horizon) of the published protocol
DATASETS = {"mmnist": ((1, 64, 64), 10, 10), "kth": ((1, 128, 128), 10, 20)}
#: OpenSTL model zoo: params (M) and V100 inference sequences/s
PUBLISHED = {
    ("convlstm", "mmnist"): (15.0, 113),
    ("predrnn", "mmnist"): (23.8, 54),
    ("convlstm", "kth"): (14.9, 16),
    ("predrnn", "kth"): (23.6, 7),
}


def build(model: str, dataset: str) -> RecurrentPredictor:
    cls = MODELS[model]
    overrides = yaml.safe_load((CONFIGS / f"{model}-{dataset}.yaml").read_text())["model"]
    shape, context, horizon = DATASETS[dataset]
    return cls(cls.Config(**overrides), vpbench.FrameShape(*shape), context, horizon)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> float:
    """Mean seconds per call after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[object]:
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def measure(model_name: str, dataset: str, args: argparse.Namespace, device: torch.device, bf16: bool) -> dict[str, object]:
    torch.manual_seed(0)
    model = build(model_name, dataset).to(device)
    shape, context, horizon = DATASETS[dataset]
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    (stage,) = model.stages()
    train_clip = torch.rand(args.batch, context + horizon, *shape, device=device)
    infer_clip = torch.rand(args.infer_batch, context, *shape, device=device)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(device, bf16):
            loss = stage.step(train_clip, 0).loss
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer() -> None:
        with autocast(device, bf16):
            model.predict(infer_clip, horizon)

    # CPU calls take seconds, so first-call overheads are negligible there: no warm-up by default
    warmup = args.warmup if args.warmup is not None else (0 if device.type == "cpu" else 2)
    model.train()
    step_s = timed(train_step, args.steps, warmup, device)
    model.eval()
    infer_s = timed(infer, args.infer_repeats, warmup, device)
    params, fps = PUBLISHED[(model_name, dataset)]
    return {
        "model": model_name,
        "dataset": dataset,
        "device": f"{device.type}{' bf16' if bf16 else ''}",
        "params": f"{sum(p.numel() for p in model.parameters()):,}",
        "published params (M)": params,
        f"train step (s), batch {args.batch}": round(step_s, 3),
        "train seq/s": round(args.batch / step_s, 2),
        f"infer seq/s, batch {args.infer_batch}": round(args.infer_batch / infer_s, 2),
        "published V100 seq/s": fps,
    }


def runs(args: argparse.Namespace) -> Iterator[tuple[torch.device, bool]]:
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        yield device, False
    else:
        yield device, False
        yield device, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--datasets", nargs="+", default=["mmnist"], choices=list(DATASETS))
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (cuda adds a bf16 autocast row)")
    parser.add_argument("--batch", type=int, default=2, help="training clips per step")
    parser.add_argument("--infer-batch", type=int, default=2, help="clips per predict call")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps")
    parser.add_argument("--infer-repeats", type=int, default=2, help="timed predict calls")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first (default: 0 on CPU, 2 on CUDA)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for device, bf16 in runs(args):
        for dataset in args.datasets:
            for model in args.models:
                rows.append(measure(model, dataset, args, device, bf16))
                print(f"done {model} {dataset} {rows[-1]['device']}", flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(tabulate(rows, headers="keys", tablefmt="github"))


if __name__ == "__main__":
    main()
