"""Leaderboard rows: each run record's own model, plus the baselines scored inside a record
when no separate record of that model exists on the same test set."""

from __future__ import annotations

from collections.abc import Sequence
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..records import MetricResult
from .load import LoadedRecord

__all__ = ["Entry", "entries_for"]


@dataclass(frozen=True)
class Entry:
    model: str
    kind: Literal["run", "baseline"]
    #: the record this row's numbers come from
    source: LoadedRecord
    #: protocol -> metric -> result
    metrics: dict[str, dict[str, MetricResult]]
    #: set when several rows share a model name (several runs of one model)
    suffix: str = ""

    @property
    def run_id(self) -> str:
        return self.source.record.run_id

    @property
    def label(self) -> str:
        base = self.model if self.kind == "run" else f"{self.model} (baseline)"
        if self.kind == "run" and self.source.record.flags:  # e.g. not-better-than-blank
            base += "".join(f" ({flag})" for flag in self.source.record.flags)
        return base + self.suffix

    @property
    def prediction_key(self) -> str:
        """Array name of this row's predictions in the source's ``fixed_sequences.npz``."""
        return f"pred_{self.model}"

    def unavailable(self, metric: str) -> bool:
        return self.kind == "run" and metric in self.source.record.unavailable_metrics

    @property
    def profile(self) -> dict[str, Any]:
        return self.source.record.profile if self.kind == "run" else {}


def entries_for(records: Sequence[LoadedRecord]) -> list[Entry]:
    """Rows for one test set, sorted by (model, kind, run id)."""
    out = [Entry(r.record.model.name, "run", r, r.record.metrics) for r in records]
    measured = {r.record.model.name for r in records}
    seen: set[str] = set()
    for r in sorted(records, key=lambda r: (r.record.run_id, r.path.as_posix())):
        for name, metrics in sorted(r.record.baselines.items()):
            if name in measured or name in seen:
                continue
            seen.add(name)
            out.append(Entry(name, "baseline", r, metrics))
    out.sort(key=lambda e: (e.model, e.kind != "run", e.run_id, e.source.path.as_posix()))
    counts = Counter(e.model for e in out)
    return [replace(e, suffix=f" [{e.run_id}]") if counts[e.model] > 1 else e for e in out]
