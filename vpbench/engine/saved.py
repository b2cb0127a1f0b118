"""A run directory read back: its saved config, the model rebuilt, a checkpoint loaded.

Used by ``vpbench eval`` (re-score a finished or stopped run) and ``vpbench predict``
(predict the future of a user's video with a trained model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..components import build_dataset, build_model
from ..config import RunConfig, build_run_config, load_yaml
from ..errors import ConfigError
from ..interfaces import VideoDataset, VideoModel
from ..plugins import Registry
from .checkpoint import load_checkpoint, load_model_state

__all__ = ["SavedRun", "LoadedCheckpoint", "read_run", "build_saved", "CHECKPOINT_HELP"]

CHECKPOINT_HELP = "best (default when the run has one), last, or a checkpoint FILE of the same model and config"


@dataclass(frozen=True)
class SavedRun:
    root: Path
    model: str
    dataset: str
    config: RunConfig
    #: the saved config as a plain mapping (run.yaml's ``config``)
    raw: dict[str, Any]


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Which weights were loaded; ``path`` is None for a model that needs no training."""

    path: Path | None
    step: int | None
    kind: str
    #: the training state stored in the run's ``last.pt``, when there is one
    train_state: dict[str, Any] | None


def read_run(root: Path, registry: Registry) -> SavedRun:
    spec = root / "run.yaml"
    if not spec.is_file():
        raise ConfigError(f"{root} is not a vpbench run directory (no run.yaml); pass --run DIR of a `vpbench run`")
    saved = load_yaml(spec)
    model, dataset = saved.get("model"), saved.get("dataset")
    if not isinstance(model, str) or not isinstance(dataset, str) or not isinstance(saved.get("config"), dict):
        raise ConfigError(f"{spec} lacks model, dataset or config; it was not written by `vpbench run`")
    registry.models.get(model)
    registry.datasets.get(dataset)
    return SavedRun(root, model, dataset, build_run_config(saved["config"]), saved["config"])


def _choose(run: SavedRun, which: str) -> tuple[Path, str] | None:
    ckpts = run.root / "checkpoints"
    best, last = ckpts / "best.pt", ckpts / "last.pt"
    if which == "best":
        if best.is_file():
            return best, "best"
        if last.is_file():
            return last, "last"  # a run stopped before its first validation has no best.pt
        return None
    if which == "last":
        if not last.is_file():
            raise ConfigError(f"{run.root} has no checkpoints/last.pt; choose --checkpoint best or a FILE")
        return last, "last"
    path = Path(which)
    if not path.is_file():
        raise ConfigError(f"--checkpoint {which!r} is neither best, last nor an existing file; use {CHECKPOINT_HELP}")
    return path, "file"


def build_saved(
    run: SavedRun, registry: Registry, data_root: Path, device: torch.device, which: str = "best"
) -> tuple[VideoDataset, VideoModel, LoadedCheckpoint]:
    """The run's dataset and model, with the chosen checkpoint's weights loaded."""
    cfg = run.config
    dataset = build_dataset(registry, run.dataset, cfg.dataset, data_root, cfg.seed)
    model = build_model(registry, run.model, cfg.model, dataset.frame_shape, dataset.context, dataset.horizon)
    model_cfg = model.config.model_dump(mode="json")
    chosen = _choose(run, which)
    last = run.root / "checkpoints" / "last.pt"
    own_fix = (
        f"the run's checkpoint is damaged: give --checkpoint another one (best, last or a FILE), "
        f"or train again with vpbench run --out NEW"
    )
    state = load_checkpoint(last, model=run.model, model_config=model_cfg, fix=own_fix)["train_state"] if last.is_file() else None
    if chosen is None:
        if model.stages() and cfg.train.max_steps > 0:
            raise ConfigError(f"{run.root} has no checkpoint to load; train it (vpbench run --resume --out {run.root})")
        return dataset, model.to(device).eval(), LoadedCheckpoint(None, None, "untrained", state)
    path, kind = chosen
    fix = (
        f"give --checkpoint a file written by `vpbench run` of {run.model} with this run's config (or best, last)"
        if kind == "file" else own_fix
    )
    payload = load_checkpoint(path, model=run.model, model_config=model_cfg, fix=fix)
    load_model_state(model, payload["state_dict"], path, fix=fix)
    step = payload.get("step")
    if step is None and isinstance(payload.get("train_state"), dict):
        step = payload["train_state"].get("global_step")
    return dataset, model.to(device).eval(), LoadedCheckpoint(path, step if isinstance(step, int) else None, kind, state)
