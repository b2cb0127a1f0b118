"""Tables of measured rows: one per (dataset, test set, metric protocol)."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..records import EXTERNAL, RunRecord
from ..sampled import parse_sampled
from .entries import Entry
from .presentation import MetricStyle, Styles, ordered, style_of
from .rowkind import budget_words, joint_start, predates_joint, rescored_from
from .safety import cap, md_text, one_line, portable
from .load import TestSet
from .table import Cell, Column, Table, fmt_seconds, fmt_si, mark_best

__all__ = [
    "PROFILE_KEYS",
    "protocols_of",
    "metric_columns",
    "rows_with_values",
    "column_styles",
    "measured_table",
    "provenance",
    "budget_of",
    "budget_statement",
    "one_budget",
    "bench_command",
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


def rows_with_values(entries: Sequence[Entry], protocol: str) -> list[Entry]:
    """The rows of ``protocol``'s table: those with at least one value in it (a row that
    would read "—" in every metric column, e.g. a baseline scored only under another
    protocol, is dropped)."""
    return [e for e in entries if e.metrics.get(protocol)]


def column_styles(entries: Sequence[Entry], protocol: str, columns: Sequence[Column], styles: Styles) -> dict[str, MetricStyle]:
    """Each metric column's style, widened so its values keep enough digits to differ."""
    return {
        c.key: style_of(c.key, styles).widened(
            res.mean for e in entries if (res := e.metrics.get(protocol, {}).get(c.key)) is not None
        )
        for c in columns
    }


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
    return cap(f"CPU: {hw.get('cpu', 'unknown')}" + (f", {threads} thread{'' if threads == 1 else 's'}" if threads else ""), 120)


def budget_of(e: Entry) -> str:
    """The row's training budget in words."""
    return _budget(e)[0]


def _budget(e: Entry) -> tuple[str, int | None, int | None]:
    if e.kind == "baseline":
        return "none (untrained, scored inside that run)", None, None
    rec = e.source.record
    t = rec.train
    batch = t.config.get("batch_size")
    if rec.model.package == EXTERNAL:
        return "unknown (external predictions, scored by `vpbench score`)", None, None
    if t.steps_done == 0:
        return "none (not trained)", 0, batch if isinstance(batch, int) else None
    text = f"{t.steps_done:,} steps" + (f" × batch {batch}" if isinstance(batch, int) else "")
    if words := budget_words(t.budget):
        text = f"{words}: {text}"
    if t.stopped_early:
        text += f", stopped early at step {t.steps_done:,} ({cap(t.stopped_early, 40)})"
    text += _selected(e)
    if rescored_from(rec) is not None:
        text = f"re-score, no training of its own; its checkpoint: {text}"
    return text, t.steps_done, batch if isinstance(batch, int) else None


def _selected(e: Entry) -> str:
    """Where the row's checkpoint was selected when not at the end: its step, or for a row of
    several seeds each seed's (the source seed alone would speak for all of them)."""
    members = [m.record for m in (e.members or (e.source,))]
    early = [r for r in members if r.train.selected_step is not None and r.train.selected_step != r.train.steps_done]
    if not early:
        return ""
    if len(members) == 1:
        rec = members[0]
        text = f", best on validation at step {rec.train.selected_step:,}"
        if predates_joint(rec):
            text += f", before its joint stage (from step {joint_start(rec):,})"
        return text
    parts = []
    for r in early:
        part = f"step {r.train.selected_step:,} (seed {r.seed}"
        if predates_joint(r):
            part += f", before its joint stage from step {joint_start(r):,}"
        parts.append(part + ")")
    rest = [str(r.seed) for r in members if r not in early]
    tail = f", seed{'s' if len(rest) > 1 else ''} {', '.join(rest)} at the last step" if rest else ""
    return f", best on validation at {', '.join(parts)}{tail}"


def _time_cell(value: tuple[float, float] | None, n: int, fmt: Callable[[float | None], str]) -> str:
    if value is None:
        return "—"
    return f"{fmt(value[0])} ± {fmt(value[1])}" if n > 1 else fmt(value[0])


def _cpu_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} s"


def _trained(entries: Sequence[Entry]) -> list[RunRecord]:
    return [
        m.record
        for e in entries
        if e.kind == "run"
        for m in (e.members or (e.source,))
        if m.record.model.package != EXTERNAL and m.record.train.steps_done > 0
    ]


def one_budget(entries: Sequence[Entry]) -> bool:
    """Whether every trained row ran under one and the same ``train.budget`` (a track): their
    steps differ by model, but their training compute is the same."""
    trained = _trained(entries)
    budgets = {json.dumps(r.train.budget, sort_keys=True) for r in trained}
    return len(budgets) == 1 and bool(budget_words(trained[0].train.budget))


def bench_command(entries: Sequence[Entry]) -> str:
    """The one ``vpbench bench`` command every trained row's runs came from (a track), as a shell
    line without local paths; empty when the rows came from other or several commands."""
    trained = _trained(entries)
    argvs = {tuple(r.argv) for r in trained}
    if len(argvs) != 1 or not trained[0].argv or trained[0].argv[0] != "bench":
        return ""
    return cap(shlex.join(["vpbench", *(portable(one_line(a)) for a in trained[0].argv)]), 400)


def budget_statement(entries: Sequence[Entry]) -> str:
    """One plain-text line on the training budget of a test set's trained rows, stated before
    their table: the one budget they share, or that they do not share one."""
    trained = _trained(entries)
    if not trained:
        return ""
    budgets = {json.dumps(r.train.budget, sort_keys=True) for r in trained}
    if one_budget(entries):
        seeds = sorted({e.n for e in entries if e.kind == "run" and e.source.record.train.steps_done > 0})
        n = f"n = {seeds[0]} seeds per row" if len(seeds) == 1 and seeds[0] > 1 else "seeds per row: the n column"
        return f"Training budget: {budget_words(trained[0].train.budget)} for every trained model ({n}); each model's steps follow from it."
    cost = {(r.train.steps_done, json.dumps(r.train.config.get("batch_size"))) for r in trained}
    if len(budgets) == 1 and len(cost) == 1:
        steps, batch = next(iter(cost))
        return f"Training budget: {steps:,} steps × batch {batch} for every trained model (equal steps, not equal compute)."
    return (
        "Training budget: not one budget: the trained rows were trained for different budgets or steps (see the "
        "Training budget column), so this table does not compare them at equal training compute."
    )


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
    """``protocol``'s table of ``entries`` (rows without a value in it are dropped, see
    :func:`rows_with_values`). Training time is the training's own wall time (summed over
    the attempts of a resumed run), never the time spent testing; CPU-seconds are the
    training's process time."""
    styles = {} if styles is None else styles
    entries = rows_with_values(entries, protocol)
    if parse_sampled(protocol) is not None:  # several draws per clip: only the rows scored so (no deterministic ones)
        entries = [e for e in entries if protocol in e.metrics]
    metrics = metric_columns(entries, protocol, styles)
    col_styles = column_styles(entries, protocol, metrics, styles)
    has_macs = any(_profile_value(e.profile, "macs") is not None for e in entries)
    has_fps = any(_profile_value(e.profile, "throughput") is not None for e in entries)
    has_cpu = any(e.cpu_time_s is not None for e in entries)
    seeds = any(e.n > 1 for e in entries)  # rows of several seeds: mean ± std, and their count
    columns = [Column("model", "Model"), Column("run", "Run"), *([Column("n", "n", numeric=True)] if seeds else [])]
    columns += [*metrics, Column("params", "#Params", numeric=True)]
    if has_macs:
        columns.append(Column("macs", "MACs/seq", numeric=True))
    if has_fps:
        columns.append(Column("throughput", "Throughput", numeric=True))
    columns += [Column("budget", "Training budget"), Column("hardware", "Hardware")]
    columns += [Column("train_time", "Training time", numeric=True)]
    if has_cpu:
        columns.append(Column("cpu_time", "CPU-seconds", numeric=True))

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
            shown[col.key] = _metric_cell(e, protocol, col.key, col_styles[col.key])
        params = rec.params_total if e.kind == "run" and rec.model.package != EXTERNAL else None
        macs, fps = _profile_value(e.profile, "macs"), _profile_value(e.profile, "throughput")
        raw.update(params=params, macs=macs, throughput=fps, budget=budget, steps=steps, batch_size=batch)
        shown.update(params=fmt_si(params), macs=fmt_si(macs), throughput=fmt_si(fps, " seq/s"), budget=budget)
        own = e.kind == "run" and rec.model.package != EXTERNAL  # scored elsewhere: not our hardware or time
        hw = _hardware(rec) if own else "—"
        train_time = e.train_wall_s if own else None
        cpu = e.cpu_time_s if own else None
        t = rec.train
        raw.update(hardware=hw, train_time_s=train_time[0] if train_time else None, cpu_time_s=cpu[0] if cpu else None)
        if e.n > 1:
            raw.update(train_time_s_std=train_time[1] if train_time else None, cpu_time_s_std=cpu[1] if cpu else None)
        raw.update(run_wall_time_s=e.wall_time_s if own else None, rescore=rescored_from(rec) is not None if own else None)
        if own:
            raw.update(train_macs=t.train_macs, sequences_seen=t.sequences_seen, stopped_early=t.stopped_early,
                       attempts=t.attempts, notes="; ".join(e.notes) or None)
        shown.update(hardware=hw, train_time=_time_cell(train_time, e.n, fmt_seconds), cpu_time=_time_cell(cpu, e.n, _cpu_seconds))
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
    mark_best(table, lambda key, value: col_styles[key].fmt(value) if key in col_styles else style_of(key, styles).fmt(value))
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
