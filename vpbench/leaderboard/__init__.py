"""Leaderboards generated from run records (markdown, CSV, LaTeX, a static website): measured tables per dataset, test set and metric
protocol; published reference tables kept apart; fixed-sequence pictures and per-horizon curves."""

from __future__ import annotations

from .entries import Entry, entries_for
from .html import write_html_site
from .load import Loaded, LoadedRecord, TestSet, group_by_test_set, load_records
from .reported import ReportedTable, load_reported
from .site import FORMATS, Board, build_board, render_flat, write_site, write_table_files

__all__ = [
    "FORMATS",
    "Board",
    "Entry",
    "Loaded",
    "LoadedRecord",
    "ReportedTable",
    "TestSet",
    "build_board",
    "entries_for",
    "group_by_test_set",
    "load_records",
    "load_reported",
    "render_flat",
    "write_html_site",
    "write_site",
    "write_table_files",
]
