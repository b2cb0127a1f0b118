"""Leaderboard rows: each run record's own model (the seeds of one model and config as one
row, a search as its best trial), plus the baselines scored inside a record when no separate
record of that model exists on the same test set."""

from __future__ import annotations

from collections.abc import Sequence
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..records import MetricResult
from .aggregate import group_name, group_rows, mean_metrics, mean_std
from .load import LoadedRecord
from .rowkind import row_notes
from .safety import LABEL_CAP, cap

__all__ = ["Entry", "entries_for"]


@dataclass(frozen=True)
class Entry:
    model: str
    kind: Literal["run", "baseline"]
    #: the record this row's links, pictures, budget and hardware come from (the lowest seed of a group)
    source: LoadedRecord
    #: protocol -> metric -> result (for a group of seeds: the mean over the seeds)
    metrics: dict[str, dict[str, MetricResult]]
    #: set when several rows share a model name (several runs of one model)
    suffix: str = ""
    #: every record behind this row (more than one: seeds of one model and config)
    members: tuple[LoadedRecord, ...] = ()
    #: protocol -> metric -> sample standard deviation over ``members``
    spread: dict[str, dict[str, float]] = field(default_factory=dict)
    #: a search collapsed to its best trial: how many trials, and the validation metric that chose it
    trials: int = 0
    selected_by: str | None = None

    @property
    def n(self) -> int:
        return max(1, len(self.members))

    @property
    def run_id(self) -> str:
        return self.source.record.run_id

    @property
    def ident(self) -> str:
        """The row's name among rows of the same model: its run id, or its runs' common name."""
        if self.n > 1:
            return group_name([m.record.run_id for m in self.members])
        return self.run_id

    @property
    def flags(self) -> list[str]:
        found: list[str] = []
        for m in self.members or (self.source,):
            found += [f for f in m.record.flags if f not in found]
        return found

    @property
    def notes(self) -> list[str]:
        """What the row is, beyond its model: a re-score, an early stop, a joint row whose
        checkpoint predates its joint stage (see :mod:`.rowkind`)."""
        return row_notes(self.members or (self.source,)) if self.kind == "run" else []

    @property
    def label(self) -> str:
        """The row's name: model, what the row is, flags and search; at most :data:`LABEL_CAP`
        characters plus the ``[run id]`` suffix (capped too), with a visible ellipsis where cut."""
        base = self.model if self.kind == "run" else f"{self.model} (baseline)"
        if self.kind == "run":
            base += "".join(f" ({cap(note, 80)})" for note in self.notes)
            base += "".join(f" ({self._flag_share(flag)}{cap(flag, 60)})" for flag in self.flags[:8])  # e.g. not-better-than-blank
            if len(self.flags) > 8:
                base += f" (+{len(self.flags) - 8} flags)"
            if self.trials:
                base += f" (best of {self.trials} trial{'s' if self.trials > 1 else ''} by {self.selected_by})"
        suffix = self.suffix if len(self.suffix) <= 66 else cap(self.suffix[:-1], 65) + "]"
        return cap(base, LABEL_CAP) + suffix

    def _flag_share(self, flag: str) -> str:
        """``"1 of 3 runs: "`` where only some of a row's seeds carry ``flag``; empty where all do."""
        members = self.members or (self.source,)
        k = sum(flag in m.record.flags for m in members)
        return "" if k == len(members) else f"{k} of {len(members)} runs: "

    @property
    def prediction_key(self) -> str:
        """Array name of this row's predictions in the source's ``fixed_sequences.npz``."""
        return f"pred_{self.model}"

    def unavailable(self, metric: str) -> bool:
        return self.kind == "run" and any(metric in m.record.unavailable_metrics for m in self.members or (self.source,))

    @property
    def profile(self) -> dict[str, Any]:
        return self.source.record.profile if self.kind == "run" else {}

    @property
    def wall_time_s(self) -> float:
        """The mean wall time of the row's runs (training and testing; a re-score: its testing)."""
        members = self.members or (self.source,)
        return sum(m.record.wall_time_s for m in members) / len(members)

    @property
    def train_wall_s(self) -> tuple[float, float] | None:
        """Mean and sample std over the row's runs of the *training* wall time (summed over
        the attempts of a resumed run); None for an untrained row. A re-score's is the wall
        time its checkpoint took to train, never the re-score's own."""
        members = self.members or (self.source,)
        if self.kind != "run" or any(m.record.train.steps_done == 0 for m in members):
            return None
        return mean_std([m.record.train.wall_time_s for m in members])

    @property
    def cpu_time_s(self) -> tuple[float, float] | None:
        """Mean and sample std of the training CPU-seconds, when every run recorded them."""
        members = self.members or (self.source,)
        values = [m.record.train.cpu_time_s for m in members]
        if self.kind != "run" or any(v is None for v in values):
            return None
        return mean_std([v for v in values if v is not None])


def _run_entry(members: tuple[LoadedRecord, ...], trials: int, selected_by: str | None) -> Entry:
    source = members[0]
    if len(members) == 1:
        return Entry(source.record.model.name, "run", source, source.record.metrics, members=members, trials=trials, selected_by=selected_by)
    means, spread = mean_metrics([m.record.metrics for m in members])
    return Entry(source.record.model.name, "run", source, means, members=members, spread=spread)


def entries_for(records: Sequence[LoadedRecord]) -> list[Entry]:
    """Rows for one test set, sorted by (model, kind, run id)."""
    out = [_run_entry(g.members, g.trials, g.selected_by) for g in group_rows(records)]
    measured = {r.record.model.name for r in records}
    seen: set[str] = set()
    for r in sorted(records, key=lambda r: (r.record.run_id, r.path.as_posix())):
        for name, metrics in sorted(r.record.baselines.items()):
            if name in measured or name in seen:
                continue
            seen.add(name)
            out.append(Entry(name, "baseline", r, metrics))
    out.sort(key=lambda e: (e.model, e.kind != "run", e.ident, e.source.path.as_posix()))
    counts = Counter(e.model for e in out)
    return [replace(e, suffix=f" [{e.ident}]") if counts[e.model] > 1 else e for e in out]
