"""What a suite's training budget buys each entry, before anything runs (``--dry-run --plan``).

For each entry and dataset (the seeds of an entry share a plan) the run's config is resolved
as the run resolves it, the model is built, and each stage's training MACs per step (forward
+ backward) are counted with :func:`vpbench.engine.budget.count_step_macs`, the count a run
makes, on zero clips of the dataset's shape: the FLOP counter sees shapes, not values, so no
data is needed. To stay fast at published sizes on a CPU, a stage is counted on one clip and
on two, and the count for ``train.batch_size`` clips is extrapolated from them: a step's count
is affine in the batch size (batch-sized work plus work on the weights alone), which
``tests/test_bench_plan.py`` checks against the counts of real runs. The steps then follow as
in a run (:func:`vpbench.engine.budget.plan_from_counts`). Nothing is written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..components import build_dataset, build_model
from ..config import build_run_config
from ..engine.budget import TrainPlan, count_step_macs, plan_from_counts
from .suite import PlannedRun

__all__ = ["EntryPlan", "count_for_batch", "plan_entries", "plan_rows"]


@dataclass(frozen=True)
class EntryPlan:
    dataset: str
    entry: str
    model: str
    plan: TrainPlan


def count_for_batch(count: Callable[[int], int], batch_size: int) -> int:
    """A step's MACs for ``batch_size`` clips from its counts on one and two clips."""
    one = count(1)
    if batch_size == 1:
        return one
    return one + (batch_size - 1) * (count(2) - one)


def plan_entries(
    runs: Sequence[PlannedRun], registry: Any, data_root: Path, echo: Callable[[str], None] | None = None
) -> list[EntryPlan]:
    """One plan per entry and dataset of ``runs`` (first seed), counted on the CPU."""
    out: list[EntryPlan] = []
    seen: set[tuple[str, str]] = set()
    for run in runs:
        if (run.dataset, run.entry) in seen:
            continue
        seen.add((run.dataset, run.entry))
        cfg = build_run_config(run.overrides)
        dataset = build_dataset(registry, run.dataset, cfg.dataset, data_root, cfg.seed)
        torch.manual_seed(cfg.seed)
        model = build_model(registry, run.model, cfg.model, dataset.frame_shape, dataset.context, dataset.horizon)
        clip = (dataset.context + dataset.horizon, *dataset.frame_shape.as_tuple())

        macs: list[int | None] = [
            count_for_batch(functools.partial(_count, model, i, clip), cfg.train.batch_size)
            for i in range(len(model.stages()))
        ]
        plan = plan_from_counts(model, cfg.train, macs)
        if echo is not None:
            echo(f"  {run.dataset}/{run.entry}: {plan.describe()}")
        out.append(EntryPlan(run.dataset, run.entry, run.model, plan))
    return out


def _count(model: Any, stage: int, clip: tuple[int, ...], clips: int) -> int:
    return count_step_macs(model, stage, torch.zeros(clips, *clip))


def plan_rows(plans: Sequence[EntryPlan]) -> list[dict[str, str]]:
    """A table row per entry: steps per stage, sequences, MACs per step and in all."""
    rows = []
    for p in plans:
        stages = p.plan.stages
        total = p.plan.macs
        rows.append({
            "dataset": p.dataset,
            "entry": p.entry,
            "batch": str(p.plan.batch_size),
            "steps": f"{p.plan.total_steps:,}",
            "by stage": " + ".join(f"{s.name} {s.steps:,}" for s in stages) if len(stages) > 1 else "",
            "sequences": f"{p.plan.total_steps * p.plan.batch_size:,}",
            "GMACs/step": " / ".join(f"{(s.macs_per_step or 0) / 1e9:.4g}" for s in stages),
            "training MACs": f"{total:.4g}" if total is not None else "—",
            "set by": p.plan.bound,
        })
    return rows
