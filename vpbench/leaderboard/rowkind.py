"""What a row is, beyond its model, read from its records: a re-score of another run's
checkpoint (``vpbench eval``), a training that stopped early, a joint row whose selected
checkpoint predates its joint stage. Each becomes a note in the row's label and budget cell.

Joint rows are *labelled*, not re-selected: a record stores the checkpoint its run selected
on validation, and a leaderboard shows what was measured. When the best validation value of a
joint run came before its joint stage, the joint steps did not improve the model on
validation, which is itself a result; the label says so instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ..records import RunRecord
from .load import LoadedRecord
from .safety import cap
from .table import fmt_si

__all__ = ["rescored_from", "joint_start", "predates_joint", "row_notes", "budget_words"]


def rescored_from(rec: RunRecord) -> dict[str, Any] | None:
    """``artifacts.rescored_from`` of a record written by ``vpbench eval``, else None."""
    value = rec.artifacts.get("rescored_from")
    return value if isinstance(value, dict) else None


def _run_name(path: object) -> str:
    text = str(path or "?").rstrip("/\\")
    return PureWindowsPath(PurePosixPath(text).name).name or text


def joint_start(rec: RunRecord) -> int | None:
    """The step at which the run's first stage named ``joint`` began, or None."""
    done = 0
    for stage in rec.train.stages:
        steps = stage.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool):
            return None
        if stage.get("name") == "joint":
            return done
        done += steps
    return None


def predates_joint(rec: RunRecord) -> bool:
    """The selected checkpoint was saved before the joint stage began (at or before its first step)."""
    start = joint_start(rec)
    sel = rec.train.selected_step
    return start is not None and sel is not None and sel <= start


def _count(n: int, total: int, text: str) -> str:
    return text if n == total else f"{n} of {total} runs: {text}"


def row_notes(members: Sequence[LoadedRecord]) -> list[str]:
    """Short notes on what the row is (empty for an ordinary training row)."""
    recs = [m.record for m in members]
    notes: list[str] = []
    rescores = [r for r in recs if rescored_from(r) is not None]
    if rescores:
        src = rescored_from(rescores[0]) or {}
        names = sorted({_run_name((rescored_from(r) or {}).get("run")) for r in rescores})
        what = f"re-score of {cap(names[0], 60)}" if len(names) == 1 else f"re-scores of {len(names)} runs"
        step = src.get("step")
        if len(names) == 1 and isinstance(step, int) and not isinstance(step, bool):
            what += f" at step {step:,}"
        notes.append(_count(len(rescores), len(recs), what))
    stopped = [r for r in recs if r.train.stopped_early]
    if stopped:
        reasons = sorted({cap(str(r.train.stopped_early), 40) for r in stopped})
        notes.append(_count(len(stopped), len(recs), "stopped early: " + ", ".join(reasons)))
    early = [r for r in recs if predates_joint(r)]
    if early:
        notes.append(_count(len(early), len(recs), "checkpoint predates its joint stage"))
    return notes


def budget_words(budget: dict[str, Any] | None) -> str:
    """``train.budget`` as words: ``2.00T training MACs``, ``50,000 sequences``."""
    if not budget:
        return ""
    parts = []
    for key, value in sorted(budget.items(), key=lambda kv: (kv[0] != "macs", kv[0])):
        if value is None:  # a budget in sequences only stores ``macs: null``
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            parts.append(cap(f"{key} {value}", 60))
        elif key == "macs":
            parts.append(f"{fmt_si(float(value))} training MACs")
        elif key == "sequences":
            parts.append(f"{int(value):,} training sequences")
        else:
            parts.append(cap(f"{key} {value:g}", 60))
    return " and ".join(parts)
