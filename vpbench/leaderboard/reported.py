"""Published reference numbers, kept as YAML data files in ``reported/`` (package data).

They are shown verbatim in their own "reported" section, never mixed with measured rows.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import DataError
from .table import Cell, Column, Table

__all__ = ["ReportedColumn", "ReportedTable", "load_reported", "reported_table"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportedColumn(_Strict):
    key: str
    header: str
    higher_is_better: bool | None = None


class ReportedTable(_Strict):
    """One published table: where it is from, how its numbers were measured, its rows."""

    id: str
    dataset: str
    title: str
    citation: str
    protocol: str
    setting: str
    columns: list[ReportedColumn]
    #: each row: method name, then one published value per column (verbatim text; null = not reported)
    rows: list[list[str | None]]
    notes: list[str] = []

    @model_validator(mode="after")
    def _row_lengths(self) -> ReportedTable:
        width = len(self.columns) + 1
        for row in self.rows:
            if len(row) != width or row[0] is None:
                raise ValueError(f"row {row!r} needs a method name and {width - 1} values")
        return self


def _parse(text: str, name: str) -> ReportedTable:
    try:
        return ReportedTable.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise DataError(f"reported table {name} is invalid: {exc}") from exc


def load_reported(folder: Path | None = None, dataset: str | None = None) -> list[ReportedTable]:
    """The shipped reference tables (or those in ``folder``), sorted by (dataset, id)."""
    tables: list[ReportedTable] = []
    if folder is None:
        root = resources.files("vpbench.leaderboard") / "reported"
        for item in root.iterdir():
            if item.name.endswith(".yaml"):
                tables.append(_parse(item.read_text(encoding="utf-8"), item.name))
    else:
        for path in sorted(folder.glob("*.yaml")):
            tables.append(_parse(path.read_text(encoding="utf-8"), str(path)))
    ids = [t.id for t in tables]
    if len(set(ids)) != len(ids):
        raise DataError(f"reported tables have duplicate ids: {sorted(ids)}")
    return sorted((t for t in tables if dataset is None or t.dataset == dataset), key=lambda t: (t.dataset, t.id))


def _number(text: str | None) -> float | None:
    """'16.60M' -> None (kept as text); '0.704' -> 0.704 (for CSV)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def reported_table(t: ReportedTable) -> Table:
    """Verbatim published values; no best marks (rows come from different protocols and budgets)."""
    columns = [Column("method", "Method")] + [
        Column(c.key, c.header, c.higher_is_better, numeric=c.higher_is_better is not None) for c in t.columns
    ]
    rows: list[dict[str, Cell]] = []
    cells: list[dict[str, str]] = []
    for row in t.rows:
        raw: dict[str, Cell] = {"method": row[0]}
        shown: dict[str, str] = {"method": row[0] or ""}
        for col, value in zip(t.columns, row[1:]):
            num = _number(value)
            raw[col.key] = num if num is not None else value
            shown[col.key] = "—" if value is None else value
        rows.append(raw)
        cells.append(shown)
    return Table(
        title=t.title,
        columns=columns,
        rows=rows,
        cells=cells,
        context={"section": "reported", "dataset": t.dataset, "source": t.id},
    )
