"""Checks a run makes before it writes anything, so that a user error never leaves a
half-made run directory behind (which ``--resume`` would only repeat)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError, DataError
from ..interfaces import Stage, VideoDataset
from ..plugins import Registry
from .train import allocate_steps

__all__ = ["check_run_dir", "check_compare", "check_trainable", "check_test_split"]


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
    if len(dataset.split("test")) == 0:  # type: ignore[arg-type]
        raise DataError(f"the test split of {dataset.name} is empty; check the dataset's config and data (`vpbench data info {dataset.name}`)")


def check_trainable(stages: Sequence[Stage], cfg: TrainConfig, dataset: VideoDataset, *, needs_val: bool) -> None:
    """The step budget splits over the stages and the splits hold enough clips."""
    allocate_steps([s.fraction for s in stages], cfg.max_steps)
    train = dataset.split("train")
    n = len(train)  # type: ignore[arg-type]
    if n < cfg.batch_size:
        raise DataError(f"the train split has {n} clips, fewer than train.batch_size={cfg.batch_size}; lower it")
    if needs_val and len(dataset.split("val")) == 0:  # type: ignore[arg-type]
        raise DataError("the validation split is empty; give the dataset validation clips or set train.max_steps=0")
