"""The optimiser of a stage and its learning-rate schedule over the stage's steps.

A schedule is a pure function of ``(step, steps)``: a resumed run sets the same rate at the
same step without any scheduler state to save. ``steps`` is the stage's share of the run's
steps (``train.max_steps``, or the steps ``train.budget`` buys), so a schedule always ends
with the budget. The values are those of torch's schedulers stepped once per update:

* ``constant``: the peak rate throughout;
* ``cosine``: ``CosineAnnealingLR(T_max=steps, eta_min=0)``, peak · (1 + cos(π k / steps)) / 2;
* ``linear``: ``LinearLR(start_factor=1, end_factor=0, total_iters=steps)``, peak · (1 − k / steps),
  the linear decay to zero that "Budgeted Training" (Li, Yumer and Ramanan, ICLR 2020) recommends;
* ``onecycle``: ``OneCycleLR(max_lr=peak, total_steps=steps)`` with its defaults, as OpenSTL
  uses it: cosine warm-up from peak/25 to the peak over the first 30% of the steps, cosine
  annealing to peak/25e4 at the last step, and Adam's β1 cycled 0.95 → 0.85 → 0.95.

Step ``k`` counts the stage's updates from 0; cosine and linear reach 0 at ``k = steps``, the
rate after the last update, OneCycle its minimum at the last update (``k = steps − 1``), as
torch's schedulers do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch

from ..config import TrainConfig

__all__ = ["ONECYCLE", "Schedule", "lr_factor", "onecycle_beta1", "build_optimizer", "apply_schedule"]

#: torch's OneCycleLR defaults (OpenSTL passes only max_lr, total_steps and final_div_factor=1e4)
ONECYCLE = {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4, "base_momentum": 0.85, "max_momentum": 0.95}

Schedule = Literal["constant", "cosine", "linear", "onecycle"]


def _cos_anneal(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _onecycle(step: int, steps: int) -> tuple[float, float]:
    """(lr factor of the peak, β1) of torch's OneCycleLR at ``step`` of ``steps`` (its phase arithmetic)."""
    c = ONECYCLE
    initial = 1.0 / c["div_factor"]
    phases = [
        (float(c["pct_start"] * steps) - 1, initial, 1.0, c["max_momentum"], c["base_momentum"]),
        (float(steps - 1), 1.0, initial / c["final_div_factor"], c["base_momentum"], c["max_momentum"]),
    ]
    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            pct = (step - start) / (end - start) if end > start else 1.0
            return _cos_anneal(lr0, lr1, pct), _cos_anneal(m0, m1, pct)
        start = end
    raise AssertionError("unreachable")


def lr_factor(schedule: Schedule, step: int, steps: int) -> float:
    """The rate of update ``step`` (0-based) of a stage of ``steps`` updates, as a fraction of its peak."""
    if schedule == "constant" or steps <= 0:
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))
    if schedule == "linear":
        return 1.0 - min(step, steps) / steps
    if schedule == "onecycle":
        return _onecycle(min(step, steps - 1), steps)[0]
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def onecycle_beta1(step: int, steps: int) -> float:
    """Adam's β1 at ``step`` under OneCycle (torch's ``cycle_momentum``)."""
    return _onecycle(min(step, steps - 1), steps)[1]


def build_optimizer(params: Iterable[torch.nn.Parameter], lr: float, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer`` over ``params`` at ``lr`` with ``train.weight_decay``."""
    params = list(params)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


def apply_schedule(opt: torch.optim.Optimizer, peak: float, schedule: Schedule, step: int, steps: int) -> None:
    """Set every group's rate (and, under OneCycle, β1) for update ``step`` of ``steps``."""
    lr = peak * lr_factor(schedule, step, steps)
    beta1 = onecycle_beta1(step, steps) if schedule == "onecycle" and steps > 0 else None
    for group in opt.param_groups:
        group["lr"] = lr
        if beta1 is not None and "betas" in group:
            group["betas"] = (beta1, group["betas"][1])
