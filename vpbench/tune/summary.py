"""The end-of-search table: one row per trial, best first (pandas, printed with tabulate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .search import TrialOutcome

__all__ = ["summary_frame", "summary_table"]


def summary_frame(trials: Sequence[TrialOutcome], keys: Sequence[str], metric: str, mode: str) -> pd.DataFrame:
    """Trials sorted by their validation value in the metric's direction (failures last)."""
    rows: list[dict[str, Any]] = []
    for t in trials:
        row: dict[str, Any] = {"trial": t.trial_id, "status": t.status}
        row.update({k: t.values.get(k) for k in keys})
        row["steps"] = t.steps
        row[f"val_{metric}"] = t.val
        row.update({f"test_{name}": value for name, value in sorted(t.test.items())})
        row["record"] = str(t.run_dir / "record.json") if t.run_dir is not None else (t.error or "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    col = f"val_{metric}"
    frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.sort_values(col, ascending=mode == "min", na_position="last", kind="stable").reset_index(drop=True)


def summary_table(frame: pd.DataFrame, metric: str, mode: str) -> str:
    """``frame`` as a text table; the optimised column carries the metric's arrow."""
    from tabulate import tabulate

    arrow = "↑" if mode == "max" else "↓"
    headers = [f"{c} {arrow}" if c in (f"val_{metric}", f"test_{metric}") else str(c) for c in frame.columns]
    text = [i for i, c in enumerate(frame.columns) if c in ("trial", "status", "record")]  # ids like 1a2b_00001 stay text
    return tabulate(frame.values.tolist(), headers, floatfmt=".4g", missingval="-", disable_numparse=text)
