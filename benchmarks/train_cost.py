"""Training cost per step of each trained model at its glyphs config: MACs and seconds.

For each model the config is resolved as ``vpbench run --model M --dataset glyphs`` resolves
it (``configs/M-glyphs.yaml`` and the entry's ``--set`` overrides), the stages' training MACs
per step are counted as ``train.budget`` counts them (:func:`vpbench.engine.budget.plan_training`:
forward + backward of one step, torch's FLOP counter, MACs = FLOPs / 2), and ``--steps``
optimiser steps of every stage are timed after one warm-up step (process CPU seconds and wall
seconds, one thread). The last columns are per model as configured: its stages' MACs per
step blended by their step fractions, CPU seconds per step and per 1e12 MACs (the rate that
converts a MAC budget into CPU time).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_cost.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_cost.py --models convlstm,simvp --steps 5

Only the training steps are timed: validation passes and the test pass (1,000 glyph clips
with LPIPS, and S-HR-VQVAE's sampler) come on top of a run's training time.

Measured on the shared 2-core machine on 2026-12-02 (load average about 8, so wall seconds
are 3-9x the CPU seconds; CPU seconds are what one uncontended thread needs), ``--steps 3``:

    model           batch  steps(config)  GMACs/step  CPU s/step  CPU s/TMAC  config TMACs  config CPU s
    shrvq-disjoint      8           2440       7.013       0.319        45.5         17.11           778
    shrvq-joint         8           2440       8.134       0.679        83.4         19.85          1656
    convlstm            8            300      14.933       0.551        36.9          4.48           165
    predrnn             8            200      30.926       1.306        42.2          6.19           261
    predrnn-v2          8            200      31.404       1.435        45.7          6.28           287
    simvp               8            400      18.201       0.774        42.5          7.28           310
    tau                 8            400      12.718       0.839        66.0          5.09           336
    phydnet             4            300      20.155       1.031        51.1          6.05           309
    mau                 4            300      14.026       0.946        67.4          4.21           284

(S-HR-VQVAE per stage: autoencoder 0.781 GMACs and 0.058 s, prior 11.344 GMACs and 0.50 s,
joint 15.081 GMACs and 1.65 s per step: the joint step runs the free-running sampler.)
The SimVP and TAU rows were measured again on 2026-12-03 (``--models simvp,tau --steps 3``, two
training jobs beside it) after the FLOP counter's fix for grouped convolutions
(:mod:`vpbench.flopcount`): before it they counted 42.908 and 45.970 GMACs per step. One CPU
second buys 12-27 GMACs of training depending on the model; all nine models at one budget of
B TMACs cost about 480·B CPU seconds of training per seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vpbench.components import build_dataset, build_model  # noqa: E402
from vpbench.config import apply_overrides, build_run_config, default_config_file, load_yaml  # noqa: E402
from vpbench.engine.batches import train_batches  # noqa: E402
from vpbench.engine.budget import plan_training  # noqa: E402
from vpbench.engine.schedule import build_optimizer  # noqa: E402
from vpbench.engine.train import allocate_steps  # noqa: E402
from vpbench.plugins import get_registry  # noqa: E402

ENTRIES = {
    "shrvq-disjoint": ("shrvq", []),
    "shrvq-joint": ("shrvq", ["model.training=joint"]),
    "convlstm": ("convlstm", []),
    "predrnn": ("predrnn", []),
    "predrnn-v2": ("predrnn-v2", []),
    "simvp": ("simvp", []),
    "tau": ("tau", []),
    "phydnet": ("phydnet", []),
    "mau": ("mau", []),
}


def time_stage(model: torch.nn.Module, stage, cfg, dataset, steps: int, first_step: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(CPU s, wall s) per optimiser step of ``stage``, over ``steps`` steps after one warm-up."""
    params = list(stage.parameters())
    ids = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in ids)
    opt = build_optimizer(params, stage.lr or cfg.lr, cfg)
    batches = train_batches(dataset.split("train"), batch_size=cfg.batch_size, seed=0, start_step=first_step)
    cpu = wall = 0.0
    for k in range(steps + 1):
        batch = next(batches)
        c0, w0 = time.process_time(), time.perf_counter()
        out = stage.step(batch, first_step + k)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        if stage.after_step is not None:
            with torch.no_grad():
                stage.after_step(batch, first_step + k)
        if k:  # the first step warms up
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
    return cpu / steps, wall / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(ENTRIES), help="comma-separated entries: " + ", ".join(ENTRIES))
    ap.add_argument("--steps", type=int, default=3, help="timed steps per stage (after one warm-up)")
    ap.add_argument("--data", type=Path, default=Path("/tmp/vpbench-train-cost"), help="data root (glyphs are generated)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    registry = get_registry()
    rows = []
    for name in args.models.split(","):
        model_name, sets = ENTRIES[name]
        source = default_config_file(model_name, "glyphs")
        cfg = build_run_config(apply_overrides(load_yaml(source) if source else {}, sets))
        torch.manual_seed(0)
        dataset = build_dataset(registry, "glyphs", cfg.dataset, args.data, 0)
        model = build_model(registry, model_name, cfg.model, dataset.frame_shape, dataset.context, dataset.horizon)
        model.train()
        c0 = time.process_time()
        plan = plan_training(model, dataset, cfg.train, torch.device("cpu"))
        count_s = time.process_time() - c0
        stages = model.stages()
        fractions = [s.fraction for s in stages]
        by_max = allocate_steps(fractions, cfg.train.max_steps)
        first = 0
        per_stage = []
        for stage, sp, n in zip(stages, plan.stages, by_max):
            cpu, wall = time_stage(model, stage, cfg.train, dataset, args.steps, first)
            per_stage.append((stage.name, sp.macs_per_step or 0, cpu, wall, stage.fraction))
            first += n
        total_f = sum(fractions)
        macs = sum(f * m for _, m, _, _, f in per_stage) / total_f
        cpu = sum(f * c for _, _, c, _, f in per_stage) / total_f
        wall = sum(f * w for _, _, _, w, f in per_stage) / total_f
        for st, m, c, w, f in per_stage:
            print(f"{name:15s} {st:12s} frac {f:.2f}  {m / 1e9:8.3f} GMACs/step  {c:7.3f} CPU s/step  {w:7.3f} wall s/step", flush=True)
        rows.append((name, cfg.train.batch_size, cfg.train.max_steps, macs, cpu, wall, count_s))
    print()
    print("model            batch  steps(config)  GMACs/step  CPU s/step  wall s/step  CPU s/TMAC  config TMACs  config CPU s  count CPU s")
    for name, b, steps, macs, cpu, wall, count_s in rows:
        print(
            f"{name:15s} {b:6d} {steps:14d} {macs / 1e9:11.3f} {cpu:11.3f} {wall:12.3f} {cpu / macs * 1e12:11.1f}"
            f" {steps * macs / 1e12:13.2f} {steps * cpu:13.0f} {count_s:12.1f}"
        )


if __name__ == "__main__":
    main()
