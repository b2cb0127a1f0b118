"""Rows that stand for several records: the seeds of one model and config, and the trials of a search.

* **Seeds.** Records of one test set that share the model (name and package), the resolved
  model, dataset and training configs and the steps trained, and differ only in the seed,
  form one row: the mean of their metric means, the sample standard deviation (n - 1) and n.
* **Searches.** Records written by ``vpbench tune`` (their ``argv`` holds ``--trial``) of one
  search folder and model form one row: the trial with the best *validation* value of the
  metric it was selected on (``train.select_value``), never a test value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..records import MetricResult, RunRecord
from .load import LoadedRecord
from .rowkind import rescored_from

__all__ = ["RowGroup", "is_trial", "group_rows", "mean_metrics", "mean_std", "group_name"]


@dataclass(frozen=True)
class RowGroup:
    """The records behind one table row; ``members[0]`` is the row's source (links, pictures, budget)."""

    members: tuple[LoadedRecord, ...]
    #: trials of a search collapsed to their best: how many, and the validation metric
    trials: int = 0
    selected_by: str | None = None


def is_trial(rec: RunRecord) -> bool:
    """A record written for one trial of a ``vpbench tune`` search."""
    return "--trial" in rec.argv


def _seed_key(rec: RunRecord) -> str:
    """Runs that differ only in the seed share it; a re-score (``vpbench eval``) never shares it
    with a training run, so it never counts as a second training of its model."""
    parts = [rec.model.name, rec.model.package, rec.model.config, rec.dataset.config, rec.train.config, rec.train.steps_done,
             rescored_from(rec) is not None]
    return json.dumps(parts, sort_keys=True, default=str)


def _direction(rec: RunRecord, metric: str) -> bool | None:
    """Whether higher is better for ``metric``, as the record's own results say."""
    for protocol in sorted(rec.metrics, key=lambda p: (p != "openstl", p)):
        res = rec.metrics[protocol].get(metric)
        if res is not None:
            return res.higher_is_better
    return None


def _best_trial(trials: Sequence[LoadedRecord]) -> RowGroup | None:
    """The trial with the best validation value, or None when they cannot be ranked on one metric."""
    metrics = {t.record.train.select_metric for t in trials}
    if len(metrics) != 1 or None in metrics:
        return None
    metric = next(iter(metrics))
    assert metric is not None
    higher = _direction(trials[0].record, metric)
    if higher is None:
        return None

    def score(t: LoadedRecord) -> tuple[int, float, str]:
        v = t.record.train.select_value
        if v is None or math.isnan(v):
            return (1, 0.0, t.record.run_id)
        return (0, -v if higher else v, t.record.run_id)

    best = min(trials, key=score)
    if score(best)[0]:
        return None
    return RowGroup((best,), trials=len(trials), selected_by=f"val_{metric}")


def group_rows(records: Sequence[LoadedRecord]) -> list[RowGroup]:
    """Records of one test set as table rows: seeds grouped, searches collapsed to their best trial."""
    searches: dict[tuple[str, str], list[LoadedRecord]] = {}
    seeds: dict[str, list[LoadedRecord]] = {}
    for r in records:
        if is_trial(r.record):
            # a search's trials live in <search>/trials/<id>/record.json
            searches.setdefault((r.run_dir.parent.parent.as_posix(), r.record.model.name), []).append(r)
        else:
            seeds.setdefault(_seed_key(r.record), []).append(r)
    out: list[RowGroup] = []
    for trials in searches.values():
        best = _best_trial(trials)
        out += [best] if best is not None else [RowGroup((t,)) for t in trials]
    for members in seeds.values():
        members = sorted(members, key=lambda r: (r.record.seed, r.record.run_id, r.path.as_posix()))
        if len({m.record.seed for m in members}) == len(members):
            out.append(RowGroup(tuple(members)))
        else:  # the same seed twice: repeats, not a seed study; each keeps its row
            out += [RowGroup((m,)) for m in members]
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def mean_metrics(
    members: Sequence[dict[str, dict[str, MetricResult]]],
) -> tuple[dict[str, dict[str, MetricResult]], dict[str, dict[str, float]]]:
    """Mean of the members' means (and per-frame curves), and the sample std of the means.

    A metric enters only when every member has it, with one direction and one curve length.
    """
    means: dict[str, dict[str, MetricResult]] = {}
    stds: dict[str, dict[str, float]] = {}
    first = members[0]
    for protocol, results in first.items():
        for name, res in results.items():
            found = [m.get(protocol, {}).get(name) for m in members]
            if any(f is None for f in found):
                continue
            rs = [f for f in found if f is not None]
            if len({f.higher_is_better for f in rs}) > 1 or len({len(f.per_frame) for f in rs}) > 1:
                continue
            if len({f.level for f in rs}) > 1:
                continue
            values = [f.mean for f in rs]
            mean = sum(values) / len(values)
            var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
            per_frame = [sum(col) / len(col) for col in zip(*(f.per_frame for f in rs))]
            ns = {f.n for f in rs}
            means.setdefault(protocol, {})[name] = MetricResult(
                mean=mean, per_frame=per_frame, higher_is_better=res.higher_is_better, level=res.level,
                n=ns.pop() if len(ns) == 1 else None,
            )
            stds.setdefault(protocol, {})[name] = math.sqrt(var)
    return means, stds


def group_name(run_ids: Sequence[str]) -> str:
    """A name for the runs of one row: their run ids' common prefix without the seed part
    (``convlstm-tiny-seed-0``, ``convlstm-tiny-seed-1`` -> ``convlstm-tiny``), else the first id."""
    prefix = run_ids[0]
    for r in run_ids[1:]:
        while not r.startswith(prefix):
            prefix = prefix[:-1]
    name = prefix.rstrip("-_. 0123456789")
    if name.lower().endswith("seed") and len(name) > 4:
        name = name[:-4].rstrip("-_. ")
    return name or run_ids[0]

