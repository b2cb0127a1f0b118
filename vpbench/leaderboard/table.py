"""A rendered-agnostic table (raw values + display strings + best marks) and its renderers:
markdown (tabulate ``pipe``), LaTeX (tabulate ``latex_raw``) and a pandas frame for CSV."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tabulate import tabulate

from .safety import csv_value, md_link, md_text, one_line

__all__ = ["Column", "Table", "to_markdown", "to_latex", "to_frame", "fmt_si", "fmt_seconds", "fmt_float"]

Cell = float | int | str | None


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    #: direction of a metric column; None for descriptive columns (no arrow, no best mark)
    higher_is_better: bool | None = None
    numeric: bool = False

    def heading(self, up: str = "↑", down: str = "↓") -> str:
        if self.higher_is_better is None:
            return self.header
        return self.header + (up if self.higher_is_better else down)


@dataclass
class Table:
    title: str
    columns: list[Column]
    #: raw values per row, keyed by column key (and extra keys kept for CSV)
    rows: list[dict[str, Cell]]
    #: display strings per row, keyed by column key
    cells: list[dict[str, str]]
    #: column key -> indices of the rows holding the best value
    best: dict[str, set[int]] = field(default_factory=dict)
    #: facts that travel into CSV output as constant columns (dataset, protocol, ...)
    context: dict[str, str] = field(default_factory=dict)
    #: per row, column key -> relative path the cell links to (markdown only)
    links: list[dict[str, str]] = field(default_factory=list)
    #: per row, column key -> (text, relative path) links shown side by side (a row of several runs)
    multi_links: list[dict[str, list[tuple[str, str]]]] = field(default_factory=list)


def fmt_float(value: float | None, spec: str) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, spec)


def fmt_si(value: float | None, unit: str = "") -> str:
    """1_140_000 -> '1.14M'; stable two-decimal SI formatting as in the paper's #Params column."""
    if value is None or math.isnan(value):
        return "—"
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}{unit}"
    return f"{value:.0f}{unit}" if float(value).is_integer() else f"{value:.3g}{unit}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.2f} h"


def mark_best(table: Table, fmt: Callable[[str, float], str]) -> None:
    """For every directed numeric column, the rows whose *displayed* value equals the best one."""
    for col in table.columns:
        if col.higher_is_better is None:
            continue
        finite = [
            (i, float(v))
            for i, row in enumerate(table.rows)
            if isinstance(v := row.get(col.key), (int, float)) and math.isfinite(float(v))
        ]
        if len(finite) < 2:
            continue
        best = (max if col.higher_is_better else min)(v for _, v in finite)
        shown = fmt(col.key, best)
        table.best[col.key] = {i for i, v in finite if fmt(col.key, v) == shown}


def _matrix(table: Table, bold: Callable[[str], str]) -> list[list[str]]:
    return [
        [bold(cells[c.key]) if i in table.best.get(c.key, set()) else cells[c.key] for c in table.columns]
        for i, cells in enumerate(table.cells)
    ]


def _align(columns: Sequence[Column]) -> list[str]:
    return ["right" if c.numeric else "left" for c in columns]


def to_markdown(table: Table) -> str:
    """Cells escaped (no markup, HTML or links from the data); only the table's own links are links."""
    cells = []
    for i, row in enumerate(table.cells):
        links = table.links[i] if i < len(table.links) else {}
        multi = table.multi_links[i] if i < len(table.multi_links) else {}
        cells.append(
            {
                k: md_link(v, links[k]) if k in links else ", ".join(md_link(t, p) for t, p in multi[k]) if k in multi else md_text(v)
                for k, v in row.items()
            }
        )
    escaped = Table(table.title, table.columns, table.rows, cells, table.best)
    rows = _matrix(escaped, lambda s: f"**{s}**")
    headers = [md_text(c.heading()) for c in table.columns]
    return tabulate(rows, headers, tablefmt="pipe", disable_numparse=True, colalign=_align(table.columns))


_LATEX = {"\\": r"\textbackslash{}", "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "→": r"$\rightarrow$", "×": r"$\times$", "—": "--", "·": r"$\cdot$", "−": "-"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in one_line(text))


def to_latex(table: Table) -> str:
    plain = [{k: latex_escape(v) for k, v in cells.items()} for cells in table.cells]
    escaped = Table(table.title, table.columns, table.rows, plain, table.best)
    rows = _matrix(escaped, lambda s: f"\\textbf{{{s}}}")
    arrows = {True: r"$\uparrow$", False: r"$\downarrow$", None: ""}
    headers = [latex_escape(c.header) + arrows[c.higher_is_better] for c in table.columns]
    body = tabulate(rows, headers, tablefmt="latex_raw", disable_numparse=True, colalign=_align(table.columns))
    return f"% {latex_escape(table.title)}\n{body}"


def to_frame(table: Table) -> pd.DataFrame:
    """Raw values (full precision) with the table's context as leading columns and a ``best`` column."""
    records: list[dict[str, Any]] = []
    for i, row in enumerate(table.rows):
        best = ";".join(c.key for c in table.columns if i in table.best.get(c.key, set()))
        merged = {**table.context, **row, "best": best}
        records.append({k: csv_value(v) for k, v in merged.items()})
    return pd.DataFrame.from_records(records)
