"""The training part of a record: what was trained, what it cost, what validation saw."""

from __future__ import annotations

from typing import Any

from ..config import TrainConfig
from ..records import TrainSummary
from .train import TrainState

__all__ = ["train_summary"]


def train_summary(cfg: TrainConfig, state: TrainState | None, select_metric: str | None) -> TrainSummary:
    """:class:`TrainSummary` of a run whose training ended in ``state`` (``None``: not trained).

    Cost fields: wall and process-CPU seconds of the training loop summed over every attempt,
    the attempts, the clips seen, the MACs spent (``None`` when the stages' MACs per step were
    not counted), the budget as configured, the validation history, and ``stopped_early`` when
    the run ended before its planned steps (e.g. a scheduler stopped it and it was tested as it
    stood).
    """
    config: dict[str, Any] = cfg.model_dump(mode="json")
    if state is None:
        return TrainSummary(config=config, steps_done=0, budget=config.get("budget"))
    planned = sum(int(entry.get("steps", 0)) for entry in state.plan) if state.plan else None
    counted = bool(state.plan) and all(entry.get("macs_per_step") is not None for entry in state.plan)
    if planned is not None:
        config["max_steps"] = planned  # the steps the run was planned with (a resume keeps its checkpoint's plan)
    stopped = None
    if planned is not None and state.global_step < planned:
        stopped = f"stopped at step {state.global_step:,} of {planned:,}"
    return TrainSummary(
        config=config,
        steps_done=state.global_step,
        stages=state.stage_log,
        selected_step=state.best_step,
        select_metric=select_metric if state.best_step is not None else None,
        select_value=state.best_value,
        wall_time_s=round(state.wall_time_s, 3),
        cpu_time_s=round(state.cpu_time_s, 3),
        attempts=max(state.attempts, 1),
        sequences_seen=state.sequences_seen or state.global_step * cfg.batch_size,
        train_macs=state.macs_done if counted else None,
        budget=config.get("budget"),
        stopped_early=stopped,
        history=state.history,
    )
