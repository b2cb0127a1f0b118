"""Loading run records for leaderboards: corrupt files are reported by name and skipped.

Records are grouped by *test set*: the dataset's data checksum together with the number of
scored clips, the context/horizon lengths and the frame shape. Rows from different test sets are
never put in one table.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..records import RunRecord, iter_records
from .safety import md_code, printable, record_problem

__all__ = ["LoadedRecord", "Loaded", "TestSet", "load_records", "group_by_test_set"]


@dataclass(frozen=True)
class LoadedRecord:
    """A parsed record and the file it came from (``<run_dir>/record.json``)."""

    path: Path
    record: RunRecord

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def fixed_sequences(self) -> Path:
        return self.run_dir / "fixed_sequences.npz"

    @property
    def sort_key(self) -> tuple[str, str, str, str]:
        r = self.record
        return (r.dataset.name, r.model.name, r.run_id, self.path.as_posix())


@dataclass
class Loaded:
    """Records that parsed, and ``(path, reason)`` for each that did not."""

    records: list[LoadedRecord] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def datasets(self) -> list[str]:
        return sorted({r.record.dataset.name for r in self.records})


@dataclass(frozen=True, order=True)
class TestSet:
    """What must agree for two records' numbers to share a table."""

    dataset: str
    data_checksum: str
    sequences: int
    context: int
    horizon: int
    frame_shape: tuple[int, int, int]

    @classmethod
    def of(cls, record: RunRecord) -> TestSet:
        return cls(
            record.dataset.name,
            record.data_checksum,
            record.test_sequences,
            record.context,
            record.horizon,
            tuple(record.frame_shape),  # type: ignore[arg-type]
        )

    @property
    def short_checksum(self) -> str:
        algo, _, digest = self.data_checksum.partition(":")
        return f"{algo}:{digest[:12]}" if digest else self.data_checksum[:16]

    def describe(self) -> str:
        c, h, w = self.frame_shape
        return (
            f"data checksum `{md_code(self.short_checksum)}` · {self.sequences:,} test clips · "
            f"{self.context} → {self.horizon} frames · {c}×{h}×{w}"
        )


def load_records(root: Path, dataset: str | None = None) -> Loaded:
    """Every ``record.json`` under ``root``; a corrupt, unreadable or unsafe one (a name that is
    not a slug) lands in ``problems``, never raises."""
    if not root.is_dir():
        raise ConfigError(f"records folder {root} does not exist; pass --records DIR holding <run>/record.json files")
    out = Loaded()
    for path, rec in iter_records(root):
        if isinstance(rec, RunRecord):
            problem = record_problem(rec)  # before escaping: an escaped surrogate holds a backslash
            rec = _encodable(rec)
            if problem is not None:
                out.problems.append((path, f"run record {path}: {problem}"))
            elif dataset is None or rec.dataset.name == dataset:
                out.records.append(LoadedRecord(path, rec))
        else:
            out.problems.append((path, str(rec)))
    out.records.sort(key=lambda r: r.sort_key)
    return out


def _clean(value: object) -> object:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {printable(str(k)): _clean(v) for k, v in value.items()}
    return value


def _encodable(rec: RunRecord) -> RunRecord:
    """``rec`` with every unpaired surrogate (JSON allows ``"\\udcff"``) written as its escape,
    so that one such record cannot end a page in ``UnicodeEncodeError``."""
    data = rec.to_json()
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        return rec
    except UnicodeEncodeError:
        return RunRecord.model_validate(_clean(data))


def group_by_test_set(records: Sequence[LoadedRecord]) -> list[tuple[TestSet, list[LoadedRecord]]]:
    """Groups of one dataset's records that share a test set; the largest group first."""
    groups: dict[TestSet, list[LoadedRecord]] = {}
    for r in records:
        groups.setdefault(TestSet.of(r.record), []).append(r)
    sizes = Counter({k: len(v) for k, v in groups.items()})
    keys = sorted(groups, key=lambda k: (k.dataset, -sizes[k], k))
    return [(k, sorted(groups[k], key=lambda r: r.sort_key)) for k in keys]
