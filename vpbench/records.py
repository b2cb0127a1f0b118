"""Versioned run records: one JSON file per run, written atomically, never edited.

Leaderboards are generated from these files. Every metric value says which protocol
produced it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import DataError
from .fsutil import atomic_write_json
from .portable import portable_record

__all__ = [
    "SCHEMA",
    "EXTERNAL",
    "MetricResult",
    "ComponentInfo",
    "TrainSummary",
    "RunRecord",
    "write_record",
    "read_record",
    "iter_records",
]

#: Bumped whenever a field changes meaning.
SCHEMA = "vpbench.run/1"
#: ``model.package`` of a record written by ``vpbench score`` from predictions made elsewhere.
EXTERNAL = "external predictions"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class MetricResult(_Strict):
    """A metric over the test split: mean over all frames and the mean at each horizon step.

    A set-level metric (``level == "set"``, e.g. FVD) has one value in ``mean``, no
    ``per_frame`` values, its spread (if computed) in ``spread``, the number of clips in ``n``
    and the protocol as run in ``info``.
    """

    mean: float
    per_frame: list[float]
    higher_is_better: bool
    level: Literal["frame", "set"] = "frame"
    spread: float | None = None
    n: int | None = None
    info: dict[str, Any] = Field(default_factory=dict)


class ComponentInfo(_Strict):
    name: str
    package: str
    config: dict[str, Any]


class TrainSummary(_Strict):
    config: dict[str, Any]
    steps_done: int
    stages: list[dict[str, Any]] = Field(default_factory=list)
    selected_step: int | None = None
    select_metric: str | None = None
    select_value: float | None = None
    #: wall time of training, summed over every attempt of a resumed run
    wall_time_s: float = 0.0
    #: process CPU time of training (not distorted by other load), summed over every attempt
    cpu_time_s: float | None = None
    #: attempts the training took (1 + resumes, local or on a cluster)
    attempts: int = 1
    #: training sequences seen (batch size x steps, summed over stages)
    sequences_seen: int | None = None
    #: multiply-accumulates of training (forward + backward), counted once per model and stage
    train_macs: int | None = None
    #: the budget the steps were derived from, as configured (``train.budget``), or ``None``
    budget: dict[str, Any] | None = None
    #: why training ended before its configured steps (e.g. ``"early-stopped"``), else ``None``
    stopped_early: str | None = None
    #: validation passes: ``{"step": .., "sequences": .., "macs": .., "stage": .., <metric>: value}``
    history: list[dict[str, Any]] = Field(default_factory=list)


class RunRecord(_Strict):
    schema_: str = Field(default=SCHEMA, alias="schema")
    run_id: str
    created: str
    vpbench_version: str
    git: dict[str, Any]
    argv: list[str]
    seed: int
    model: ComponentInfo
    dataset: ComponentInfo
    data_checksum: str
    data_info: dict[str, Any] = Field(default_factory=dict)
    frame_shape: tuple[int, int, int]
    context: int
    horizon: int
    params_total: int
    params_trainable: int
    train: TrainSummary
    test_sequences: int
    #: protocol -> metric name -> result
    metrics: dict[str, dict[str, MetricResult]]
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)
    nan_frames: int = 0
    #: the same test clips scored for a trivial baseline (model name -> protocol -> metric)
    baselines: dict[str, dict[str, dict[str, MetricResult]]] = Field(default_factory=dict)
    profile: dict[str, Any] = Field(default_factory=dict)
    artifacts: dict[str, Any] = Field(default_factory=dict)
    hardware: dict[str, Any]
    wall_time_s: float
    #: warnings about the result itself, e.g. ``not-better-than-blank`` (see engine/blankcheck.py)
    flags: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def write_record(record: RunRecord, path: Path) -> None:
    """Write ``record`` to ``path`` atomically, portable: a path inside the run folder (``path``'s
    folder) becomes relative to it, any other absolute path ``<local>/NAME`` (see :mod:`vpbench.portable`)."""
    atomic_write_json(path, portable_record(record.to_json(), run_dir=path.parent))


def read_record(path: Path) -> RunRecord:
    """Parse a record; a corrupt or foreign file raises DataError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or not UTF-8
        raise DataError(f"run record {path} is not readable JSON: {exc}; fix or remove the file") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise DataError(f"run record {path} has schema {found!r}, expected {SCHEMA!r}")
    try:
        return RunRecord.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise DataError(f"run record {path} is invalid at {loc!r}: {err['msg']}") from exc


def iter_records(root: Path) -> Iterator[tuple[Path, RunRecord | DataError]]:
    """Every ``record.json`` under ``root`` (sorted), parsed, or the error that names it."""
    for path in sorted(root.rglob("record.json")):
        try:
            yield path, read_record(path)
        except DataError as exc:
            yield path, exc
