"""The training plan: each stage's steps, from ``train.max_steps`` or from ``train.budget``.

A budget is converted to steps before training. Each stage's cost per step is counted once
(per model, config, stage and batch size) with torch's FLOP counter on one training step,
forward and backward, of a deep copy of the model on one training batch; MACs = FLOPs / 2
(the convention of :mod:`vpbench.profiling`). The counter knows the matrix products,
convolutions and attention (:mod:`vpbench.flopcount`, which adds the CPU attention kernel);
elementwise work is not counted. The count leaves the model, the data and every random
stream as it found them.

Steps from a budget (``train.batch_size`` = B, stage fractions f_i, MACs per step m_i):

* ``sequences``: ``sequences // B`` steps (never more clips than the budget);
* ``macs``: the most steps N whose split over the stages, ``allocate_steps(f, N)``, costs
  at most the budget, Σ_i N_i·m_i <= macs;
* both: the fewer steps (whichever budget runs out first).

The split between stages is the model's (its fractions of the steps, as for ``max_steps``),
so one budget pays for every stage. The plan is stored in the checkpoint's training state:
a resumed run, here or on another machine, keeps the plan it started with.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..errors import ConfigError
from ..flopcount import flop_counter
from ..interfaces import VideoDataset, VideoModel
from .rng import capture_rng, restore_rng
from .train import allocate_steps

__all__ = ["StagePlan", "TrainPlan", "MacCounts", "count_step_macs", "steps_for_budget", "plan_training", "plan_from_counts"]


@dataclass(frozen=True)
class StagePlan:
    name: str
    steps: int
    #: training MACs of one step of this stage (forward + backward), ``None`` when not counted
    macs_per_step: int | None


@dataclass(frozen=True)
class TrainPlan:
    stages: tuple[StagePlan, ...]
    batch_size: int
    #: what set the steps: ``max_steps``, ``sequences``, ``macs``
    bound: str

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    @property
    def macs(self) -> int | None:
        """MACs of the whole plan, ``None`` when a stage's cost is unknown."""
        if any(s.macs_per_step is None for s in self.stages):
            return None
        return sum(s.steps * (s.macs_per_step or 0) for s in self.stages)

    def describe(self) -> str:
        parts = [
            f"{s.name} {s.steps:,} steps" + (f" x {s.macs_per_step:.3g} MACs" if s.macs_per_step is not None else "")
            for s in self.stages
        ]
        total = self.macs
        return (
            f"training plan ({self.bound}): {self.total_steps:,} steps of {self.batch_size} clips"
            + (f", {total:.4g} MACs" if total is not None else "") + ": " + ", ".join(parts)
        )


def count_step_macs(model: VideoModel, stage_index: int, batch: torch.Tensor, global_step: int = 0) -> int:
    """MACs of one training step (loss forward + backward) of stage ``stage_index`` on ``batch``.

    Runs on a deep copy of ``model`` (same device), so the model's weights, buffers and
    statistics are untouched; the random streams are restored afterwards.
    """
    rng = capture_rng()
    try:
        probe = copy.deepcopy(model)
        probe.train()
        stage = probe.stages()[stage_index]
        params = list(stage.parameters())
        trainable = {id(p) for p in params}
        for p in probe.parameters():
            p.requires_grad_(id(p) in trainable)
        counter = flop_counter()
        with counter:
            out = stage.step(batch, global_step)
            if params and out.loss.requires_grad:
                out.loss.backward()  # type: ignore[no-untyped-call]
        return int(counter.get_total_flops()) // 2
    finally:
        restore_rng(rng)


def steps_for_budget(
    fractions: Sequence[float], macs_per_step: Sequence[int | None], batch_size: int, budget: Any
) -> tuple[int, str]:
    """Total steps a budget buys and which of its bounds set them (``sequences`` or ``macs``)."""
    options: list[tuple[int, str]] = []
    if budget.sequences is not None:
        options.append((budget.sequences // batch_size, "sequences"))
    if budget.macs is not None:
        if any(m is None for m in macs_per_step):
            raise ConfigError("train.budget.macs needs each stage's MACs per step, which were not counted")
        m = [int(x or 0) for x in macs_per_step]
        mean = sum(f * x for f, x in zip(fractions, m)) / sum(fractions)
        if mean <= 0:
            raise ConfigError(
                "the model's training steps count no multiply-accumulates; give train.budget.sequences instead of macs"
            )

        def cost(n: int) -> int:
            return sum(s * x for s, x in zip(allocate_steps(list(fractions), n), m))

        n = int(budget.macs // mean)
        while n > 0 and cost(n) > budget.macs:
            n -= 1
        while cost(n + 1) <= budget.macs:
            n += 1
        options.append((n, "macs"))
    return min(options)


def _probe_batch(dataset: VideoDataset, batch_size: int, device: torch.device) -> torch.Tensor:
    train = dataset.split("train")
    return torch.stack([train[i] for i in range(batch_size)]).float().to(device)


class MacCounts:
    """MAC counts kept in a data root's checked cache (``<root>/.vpbench-cache/train-macs``).

    New counts are held in memory until :meth:`flush`, so that a run refused after planning
    (a user error found later) writes nothing.
    """

    def __init__(self, data_root: Path) -> None:
        from .cache import CheckedStore

        self.store = CheckedStore(data_root, "train-macs")
        self.pending: list[tuple[dict[str, Any], int]] = []

    def get(self, key: dict[str, Any], compute: Callable[[], int]) -> int:
        got = self.store.load(key)
        if got is not None and got.get("macs", np.empty(0)).shape == (1,):
            return int(got["macs"][0])
        value = compute()
        self.pending.append((key, value))
        return value

    def flush(self) -> None:
        for key, value in self.pending:
            self.store.save(key, {"macs": np.array([value], dtype=np.int64)})
        self.pending.clear()


def plan_training(
    model: VideoModel, dataset: VideoDataset, cfg: TrainConfig, device: torch.device, *, cache: MacCounts | None = None
) -> TrainPlan:
    """Each stage's steps and MACs per step; with ``train.budget`` the steps come from it.

    ``cache``: counts kept from earlier runs (one training step each otherwise); the caller
    flushes the new ones.
    """
    from .. import __version__

    stages = model.stages()
    batch = _probe_batch(dataset, cfg.batch_size, device) if stages else None
    macs: list[int | None] = []
    for i, stage in enumerate(stages):
        assert batch is not None
        key = {
            "kind": "train-macs/2",  # /2: grouped convolutions' weight gradients counted right (flopcount.py)
            "model": f"{type(model).__module__}.{type(model).__qualname__}",
            "config": model.config.model_dump(mode="json"),
            "frame_shape": list(model.frame_shape.as_tuple()),
            "context": model.context,
            "horizon": model.horizon,
            "stage": [i, stage.name],
            "batch_size": cfg.batch_size,
            "device": device.type,
            "vpbench": __version__,
            "torch": torch.__version__,
        }
        # at step 0: what a step computes does not depend on the step (scheduled sampling
        # only chooses which frames are fed), so one count per stage holds for all of them
        count = functools.partial(count_step_macs, model, i, batch)
        macs.append(cache.get(key, count) if cache is not None else count())
    return plan_from_counts(model, cfg, macs)


def plan_from_counts(model: VideoModel, cfg: TrainConfig, macs: Sequence[int | None]) -> TrainPlan:
    """The plan given each stage's MACs per step (``max_steps`` split by the stages' fractions,
    or the steps ``train.budget`` buys)."""
    stages = model.stages()
    fractions = [s.fraction for s in stages]
    if cfg.budget is None:
        steps, bound = allocate_steps(fractions, cfg.max_steps), "max_steps"
    else:
        total, bound = steps_for_budget(fractions, macs, cfg.batch_size, cfg.budget)
        steps = allocate_steps(fractions, total)
    return TrainPlan(tuple(StagePlan(s.name, n, m) for s, n, m in zip(stages, steps, macs)), cfg.batch_size, bound)
