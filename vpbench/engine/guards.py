"""Checks a run makes before it writes anything, so that a user error never leaves a
half-made run directory behind (which ``--resume`` would only repeat)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import MAX_LR, TrainConfig
from ..errors import ConfigError, DataError
from ..interfaces import Stage, VideoDataset
from ..names import check_slug, quote
from ..plugins import Registry
from .train import allocate_steps

__all__ = [
    "MAX_CLIPS", "check_run_dir", "check_run_id", "check_compare", "check_trainable", "check_test_split", "check_measured",
]

#: clips per split the harness can index and score (a test split beyond it is a config error, not a MemoryError)
MAX_CLIPS = 10_000_000


def check_run_id(root: Path, flag: str = "--out") -> str:
    """The run id (``root``'s last part, the record's ``run_id``) is a plain name."""
    return check_slug(
        f"run id (the last part of {flag} {root})" if len(str(root)) <= 120 else f"run id (the last part of {flag})",
        root.name,
        f"choose {flag} DIR whose last part is a plain name, e.g. runs/my-run",
    )


def check_measured(metrics: Sequence[Any], unavailable: Mapping[str, str], protocols: Sequence[str], registry: Registry) -> None:
    """At least one metric under every protocol asked for: a record that measured nothing is an error."""
    known = sorted({p for entry in registry.metrics for p in entry.spec.protocols})
    if not protocols:
        raise ConfigError(f"eval.protocols is empty: nothing would be measured; list at least one of: {', '.join(known) or 'none'}")
    for protocol in protocols:
        if protocol not in known:
            raise ConfigError(f"unknown metric protocol {quote(protocol)} in eval.protocols; the installed metrics offer: {', '.join(known) or 'none'}")
        if not any(m.protocol == protocol for m in metrics):
            why = "; ".join(f"{k}: {v}" for k, v in unavailable.items())
            raise ConfigError(
                f"no metric to measure under protocol {protocol!r}" + (f" ({why})" if why else "")
                + "; list available metrics in eval.metrics (see `vpbench plugins`) and protocols in eval.protocols"
            )


def check_run_dir(root: Path, *, resume: bool) -> None:
    """``root`` can hold this run: a folder (or nothing yet), not finished, new unless resumed."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {root} is a file, not a run directory; choose another --out")
    if (root / "record.json").exists():
        if resume:
            raise ConfigError(f"run {root} has already finished (record.json exists); nothing to resume")
        raise ConfigError(f"{root} already holds a finished run; choose another --out")
    spec = root / "run.yaml"
    if resume and not spec.is_file():
        raise ConfigError(f"{root} is not a vpbench run directory (no run.yaml); start a new run instead")
    if not resume and spec.exists():
        raise ConfigError(f"{root} holds an unfinished run; continue it with --resume --out {root} or choose another --out")


def check_compare(registry: Registry, names: Sequence[str]) -> None:
    """Every ``--compare`` baseline is a registered model (an unknown one lists the valid ones)."""
    for name in names:
        if name not in registry.models:
            valid = ", ".join(sorted(registry.models.names()))
            raise ConfigError(f"unknown --compare baseline {name!r}; valid models: {valid} (or --compare none)")


def check_test_split(dataset: VideoDataset) -> None:
    """The test split holds clips (an empty one would only fail after the run directory exists)."""
    n = len(dataset.split("test"))  # type: ignore[arg-type]
    if n > MAX_CLIPS:
        raise ConfigError(
            f"the test split of {dataset.name} has {n:,} clips, more than vpbench scores ({MAX_CLIPS:,}); "
            f"lower it (e.g. dataset.test_length)"
        )
    if n == 0:
        raise DataError(f"the test split of {dataset.name} is empty; check the dataset's config and data (`vpbench data info {dataset.name}`)")


def check_trainable(stages: Sequence[Stage], cfg: TrainConfig, dataset: VideoDataset, *, needs_val: bool) -> None:
    """The step budget splits over the stages and the splits hold enough clips."""
    allocate_steps([s.fraction for s in stages], cfg.max_steps)
    for s in stages:  # a model's own lr has train.lr's bounds
        if s.lr is not None and not (math.isfinite(s.lr) and 0 < s.lr <= MAX_LR):
            raise ConfigError(
                f"stage {quote(s.name)} of the model has learning rate {s.lr:g}, outside (0, {MAX_LR:g}]; "
                f"lower the learning rate in the model's `model:` config"
            )
    train = dataset.split("train")
    n = len(train)  # type: ignore[arg-type]
    for split, size in (("train", n), ("val", len(dataset.split("val")) if needs_val else 0)):  # type: ignore[arg-type]
        if size > MAX_CLIPS:
            raise ConfigError(
                f"the {split} split of {dataset.name} has {size:,} clips, more than vpbench can index ({MAX_CLIPS:,}); lower it"
            )
    if n < cfg.batch_size:
        raise DataError(f"the train split has {n} clips, fewer than train.batch_size={cfg.batch_size}; lower it")
    if needs_val and len(dataset.split("val")) == 0:  # type: ignore[arg-type]
        raise DataError("the validation split is empty; give the dataset validation clips or set train.max_steps=0")
