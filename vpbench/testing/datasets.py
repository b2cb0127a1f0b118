"""Dataset checks: split lengths, clip shapes and range, deterministic val/test, valid fixed
clips, a stable checksum, and a spec that states the real frame shape and lengths."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..components import build_dataset
from ..data.root import resolve_data_root
from ..engine.preflight import Preflight, check_clips, component
from ..errors import DataError
from ..interfaces import VideoDataset
from ..plugins import Registry
from .cases import Case, NotApplicable, fail

__all__ = ["dataset_cases", "SPLITS"]

SPLITS = ("train", "val", "test")


def _build(registry: Registry, name: str, data_root: Path) -> VideoDataset:
    dataset = build_dataset(registry, name, {}, data_root, seed=0)
    try:
        dataset.check()
    except DataError as exc:
        raise NotApplicable(f"data not prepared ({exc})") from exc
    return dataset


def _probe(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1}) if n > 0 else []


def check_spec(registry: Registry, name: str, data_root: Path) -> None:
    """The spec's frame_shape, context and horizon are the dataset's (default config)."""
    spec = registry.datasets.get(name)
    ds = build_dataset(registry, name, {}, data_root, seed=0)
    real = (ds.frame_shape.as_tuple(), ds.context, ds.horizon)
    stated = (tuple(spec.frame_shape), spec.context, spec.horizon)
    if real != stated:
        fail(f"dataset {name!r}: the spec states frame_shape, context, horizon = {stated}; the dataset has {real}")


def check_splits(registry: Registry, name: str, data_root: Path) -> None:
    """Every split is a map-style dataset with at least one clip."""
    ds = _build(registry, name, data_root)
    for split in SPLITS:
        data = ds.split(split)  # type: ignore[arg-type]
        try:
            n = len(data)  # type: ignore[arg-type]
        except TypeError:
            fail(f"dataset {name!r}: split({split!r}) must have a length (a map-style torch Dataset)")
        if n < 1:
            fail(f"dataset {name!r}: split({split!r}) is empty")


def check_clip_values(registry: Registry, name: str, data_root: Path) -> None:
    """First, middle and last clip of each split: float [T+S, C, H, W] in [0, 1], finite."""
    ds = _build(registry, name, data_root)
    expected = (ds.context + ds.horizon, *ds.frame_shape.as_tuple())
    pf = Preflight()
    for split in SPLITS:
        data: Any = ds.split(split)  # type: ignore[arg-type]
        clips = [data[i] for i in _probe(len(data))]
        check_clips(pf, f"dataset {name!r}", split, clips, expected)
    if pf.violations:
        fail("; ".join(pf.violations))


def check_deterministic(registry: Registry, name: str, data_root: Path) -> None:
    """Two instances give the same val and test clips and the same checksum, twice over."""
    a, b = _build(registry, name, data_root), _build(registry, name, data_root)
    for split in ("val", "test"):
        da: Any = a.split(split)  # type: ignore[arg-type]
        db: Any = b.split(split)  # type: ignore[arg-type]
        if len(da) != len(db):
            fail(f"dataset {name!r}: split({split!r}) has {len(da)} clips in one instance and {len(db)} in another")
        for i in _probe(len(da)):
            if not torch.equal(torch.as_tensor(da[i]), torch.as_tensor(db[i])) or not torch.equal(
                torch.as_tensor(da[i]), torch.as_tensor(da[i])
            ):
                fail(f"dataset {name!r}: {split} clip {i} differs between reads; val and test must be fixed")
    ca, cb, ca2 = a.checksum(), b.checksum(), a.checksum()
    if not (ca == cb == ca2) or not isinstance(ca, str) or not ca:
        fail(f"dataset {name!r}: checksum() must be a stable non-empty string; got {ca!r}, {ca2!r}, {cb!r}")


def check_fixed_clips(registry: Registry, name: str, data_root: Path) -> None:
    """``fixed_test_sequences`` are distinct indices into the test split, of valid clips."""
    ds = _build(registry, name, data_root)
    n = len(ds.split("test"))  # type: ignore[arg-type]
    ids = list(ds.fixed_test_sequences)
    bad = [i for i in ids if not isinstance(i, int) or not 0 <= i < n]
    if bad or len(set(ids)) != len(ids):
        fail(f"dataset {name!r}: fixed_test_sequences must be distinct indices in [0, {n}); got {ids}")
    test: Any = ds.split("test")
    pf = Preflight()
    check_clips(pf, f"dataset {name!r}", "fixed test", [test[i] for i in ids], (ds.context + ds.horizon, *ds.frame_shape.as_tuple()))
    if pf.violations:
        fail("; ".join(pf.violations))


def dataset_cases(registry: Registry, names: Sequence[str] | None = None, data_root: Path | None = None) -> list[Case]:
    chosen = list(names) if names is not None else registry.datasets.names()
    root = resolve_data_root(data_root)
    checks = {
        "spec-agrees": check_spec,
        "splits": check_splits,
        "clip-shape-and-range": check_clip_values,
        "val-test-deterministic": check_deterministic,
        "fixed-clips-valid": check_fixed_clips,
    }
    out: list[Case] = []
    for name in chosen:
        registry.datasets.get(name)
        who = component(registry, "dataset", name)
        for label, fn in checks.items():
            out.append(Case("dataset", name, label, partial(fn, registry, name, root), who))
    return out
