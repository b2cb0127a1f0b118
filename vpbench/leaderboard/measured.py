"""Tables of measured rows: one per (dataset, test set, metric protocol)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..records import EXTERNAL, RunRecord
from ..sampled import parse_sampled
from .entries import Entry
from .presentation import MetricStyle, Styles, ordered, style_of
from .safety import cap, md_text, portable
from .load import TestSet
from .table import Cell, Column, Table, fmt_seconds, fmt_si, mark_best

__all__ = [
    "PROFILE_KEYS",
    "protocols_of",
    "metric_columns",
    "measured_table",
    "provenance",
    "budget_of",
]

#: record.profile keys (as written by ``vpbench.profiling.profile_model``) read for the cost
#: columns, first present wins. MACs (multiply-accumulates) are what OpenSTL's "FLOPs" column
#: counts (fvcore); ``flops_per_sequence`` counts a multiply-add as 2 and is halved.
PROFILE_KEYS = {
    "macs": ("macs_per_sequence",),
    "flops": ("flops_per_sequence",),
    "throughput": ("throughput_seq_per_s",),
}


def protocols_of(entries: Sequence[Entry]) -> list[str]:
    found = {p for e in entries for p in e.metrics}
    return sorted(found, key=lambda p: (p != "openstl", p))


def metric_columns(entries: Sequence[Entry], protocol: str, styles: Styles) -> list[Column]:
    """Metric columns in their registered order (first-party: Table 2's), headed by their
    registered names, arrows from the records' ``higher_is_better``.

    A metric whose direction differs between records gets no direction (hence no best mark).
    """
    directions: dict[str, set[bool]] = {}
    for e in entries:
        for name, res in e.metrics.get(protocol, {}).items():
            directions.setdefault(name, set()).add(res.higher_is_better)
    for e in entries:  # a metric unavailable in a run still gets its column ("n/a")
        if e.kind == "run":
            for name in e.source.record.unavailable_metrics:
                directions.setdefault(name, set())
    cols = []
    for n in ordered(set(directions), styles):
        d = directions[n]
        note = " (direction disagrees)" if len(d) > 1 else ""
        cols.append(Column(n, style_of(n, styles).heading + note, next(iter(d)) if len(d) == 1 else None, numeric=True))
    return cols


def _profile_value(profile: dict[str, Any], what: str) -> float | None:
    for key in PROFILE_KEYS[what]:
        v = profile.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    if what == "macs" and (flops := _profile_value(profile, "flops")) is not None:
        return flops / 2
    return None


def _hardware(rec: RunRecord) -> str:
    hw = rec.hardware
    device = str(hw.get("device", "?"))
    if device.startswith("cuda"):
        return cap(f"GPU: {hw.get('gpu', device)}", 120)
    threads = hw.get("torch_threads")
    return cap(f"CPU: {hw.get('cpu', 'unknown')}" + (f", {threads} threads" if threads else ""), 120)


def budget_of(e: Entry) -> str:
    """The row's training budget in words."""
    return _budget(e)[0]


def _budget(e: Entry) -> tuple[str, int | None, int | None]:
    if e.kind == "baseline":
        return "none (untrained, scored inside that run)", None, None
    t = e.source.record.train
    batch = t.config.get("batch_size")
    if e.source.record.model.package == EXTERNAL:
        return "unknown (external predictions, scored by `vpbench score`)", None, None
    if t.steps_done == 0:
        return "none (not trained)", 0, batch if isinstance(batch, int) else None
    text = f"{t.steps_done:,} steps" + (f" × batch {batch}" if isinstance(batch, int) else "")
    if t.selected_step is not None and t.selected_step != t.steps_done:
        text += f", best on validation at step {t.selected_step:,}"
    return text, t.steps_done, batch if isinstance(batch, int) else None


def _run_cell(e: Entry, link_base: Path | None) -> tuple[str, str | list[tuple[str, str]] | None]:
    """The Run cell's text and, with ``link_base``, the record(s) it links to (relative)."""
    if e.n > 1:  # one link per seed's record
        ids = [m.record.run_id for m in e.members]
        if link_base is None:
            return ", ".join(ids), None
        return ", ".join(ids), [(m.record.run_id, Path(os.path.relpath(m.path, link_base)).as_posix()) for m in e.members]
    text = e.run_id if e.kind == "run" else f"in {e.run_id}"
    if link_base is None:
        return text, None
    return text, Path(os.path.relpath(e.source.path, link_base)).as_posix()


def _metric_cell(e: Entry, protocol: str, metric: str, style: MetricStyle) -> str:
    """``mean``, or ``mean ± std`` for a row of several seeds (std: sample, n - 1)."""
    res = e.metrics.get(protocol, {}).get(metric)
    if res is None:
        return "n/a" if e.unavailable(metric) else "—"
    std = e.spread.get(protocol, {}).get(metric)
    if e.n > 1 and std is not None:
        return f"{style.fmt(res.mean)} ± {style.fmt(std)}"
    return style.fmt(res.mean)


def measured_table(test_set: TestSet, entries: Sequence[Entry], protocol: str, link_base: Path | None = None, styles: Styles | None = None) -> Table:
    styles = {} if styles is None else styles
    if parse_sampled(protocol) is not None:  # several draws per clip: only the rows scored so (no deterministic ones)
        entries = [e for e in entries if protocol in e.metrics]
    metrics = metric_columns(entries, protocol, styles)
    has_macs = any(_profile_value(e.profile, "macs") is not None for e in entries)
    has_fps = any(_profile_value(e.profile, "throughput") is not None for e in entries)
    seeds = any(e.n > 1 for e in entries)  # rows of several seeds: mean ± std, and their count
    columns = [Column("model", "Model"), Column("run", "Run"), *([Column("n", "n", numeric=True)] if seeds else [])]
    columns += [*metrics, Column("params", "#Params", numeric=True)]
    if has_macs:
        columns.append(Column("macs", "MACs/seq", numeric=True))
    if has_fps:
        columns.append(Column("throughput", "Throughput", numeric=True))
    columns += [Column("budget", "Training budget"), Column("hardware", "Hardware"), Column("wall_time", "Wall time", numeric=True)]

    rows: list[dict[str, Cell]] = []
    cells: list[dict[str, str]] = []
    links: list[dict[str, str]] = []
    multi: list[dict[str, list[tuple[str, str]]]] = []
    for e in entries:
        rec = e.source.record
        budget, steps, batch = _budget(e)
        raw: dict[str, Cell] = {"model": e.model, "kind": e.kind, "run": e.run_id if e.n == 1 else e.ident}
        run_text, run_link = _run_cell(e, link_base)
        shown: dict[str, str] = {"model": e.label, "run": run_text}
        links.append({"run": run_link} if isinstance(run_link, str) else {})
        multi.append({"run": run_link} if isinstance(run_link, list) else {})
        if seeds:
            raw["n"] = e.n
            raw["runs"] = ";".join(m.record.run_id for m in e.members) or e.run_id
            raw["seeds"] = ";".join(str(m.record.seed) for m in e.members) or str(rec.seed)
            shown["n"] = str(e.n)
        if e.trials:
            raw.update(trials=e.trials, selected_by=e.selected_by)
        for col in metrics:
            res = e.metrics.get(protocol, {}).get(col.key)
            raw[col.key] = res.mean if res is not None else None
            if e.n > 1:
                raw[f"{col.key}_std"] = e.spread.get(protocol, {}).get(col.key)
            shown[col.key] = _metric_cell(e, protocol, col.key, style_of(col.key, styles))
        params = rec.params_total if e.kind == "run" and rec.model.package != EXTERNAL else None
        macs, fps = _profile_value(e.profile, "macs"), _profile_value(e.profile, "throughput")
        raw.update(params=params, macs=macs, throughput=fps, budget=budget, steps=steps, batch_size=batch)
        shown.update(params=fmt_si(params), macs=fmt_si(macs), throughput=fmt_si(fps, " seq/s"), budget=budget)
        own = e.kind == "run" and rec.model.package != EXTERNAL  # scored elsewhere: not our hardware or time
        hw = _hardware(rec) if own else "—"
        wall = e.wall_time_s if own else None
        raw.update(hardware=hw, wall_time_s=wall)
        shown.update(hardware=hw, wall_time=fmt_seconds(wall))
        rows.append(raw)
        cells.append(shown)

    table = Table(
        title=f"{test_set.dataset} · protocol {protocol} · {test_set.short_checksum}",
        columns=columns,
        rows=rows,
        cells=cells,
        context={
            "section": "measured",
            "dataset": test_set.dataset,
            "protocol": protocol,
            "data_checksum": test_set.data_checksum,
            "test_sequences": str(test_set.sequences),
        },
        links=links,
        multi_links=multi,
    )
    mark_best(table, lambda key, value: style_of(key, styles).fmt(value))
    return table


def is_generated(info: dict[str, Any]) -> bool:
    """Whether ``data_info`` says the test set was generated (not a published test set)."""
    if info.get("standard_test_set") is False:
        return True
    return "generated" in repr(info.get("test_set", "")).lower() + repr(info.get("test", "")).lower()


def provenance(records: Sequence[RunRecord]) -> str:
    """One markdown line on where the test clips come from, from the first record's ``data_info``."""
    info = records[0].data_info if records else {}
    label = "**Generated test set** (not a published test set): " if is_generated(info) else "Test set: "
    return label + md_text(provenance_text(info))


def provenance_text(info: dict[str, Any]) -> str:
    """Where the test clips come from, as plain text: capped, without local paths."""
    parts: list[str] = []
    test = info.get("test")
    if isinstance(test, dict) and isinstance(test.get("source"), str):
        parts.append(test["source"])
    ts = info.get("test_set")
    if isinstance(ts, str) and ts not in ("standard",):
        parts.append(f"test set: {ts}")
    elif ts == "standard":
        parts.append("standard test set")
    if isinstance(test, dict) and isinstance(test.get("persons"), list):
        parts.append("persons " + ", ".join(str(p) for p in test["persons"]))
    for key in ("generator", "windows"):
        if key in info and not isinstance(info[key], (dict, list)):
            parts.append(f"{key} {info[key]}")
    if not parts:
        parts.append("the dataset plugin gave no provenance (data_info is empty)")
    return cap(portable("; ".join(str(p) for p in parts)))
