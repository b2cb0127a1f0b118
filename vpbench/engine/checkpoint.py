"""Checkpoints: written atomically; a checkpoint of another model or config is refused."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..fsutil import atomic_path

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "load_model_state"]

FORMAT = "vpbench.checkpoint/1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def load_checkpoint(path: Path, *, model: str, model_config: dict[str, Any]) -> dict[str, Any]:
    """Read a checkpoint and check that it belongs to ``model`` with ``model_config``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to restart the run, "
            f"or point --out at another run"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vpbench checkpoint (format {FORMAT}); give a vpbench run directory")
    if payload.get("model") != model:
        raise CheckpointError(
            f"checkpoint {path} is of model {payload.get('model')!r}, not {model!r}; use --model {payload.get('model')}"
        )
    saved_cfg = payload.get("model_config", {})
    if saved_cfg != model_config:
        diff = sorted(k for k in set(saved_cfg) | set(model_config) if saved_cfg.get(k) != model_config.get(k))
        raise CheckpointError(
            f"checkpoint {path} was trained with another config of {model!r} (differs in: {', '.join(diff)}); "
            f"use the run's own config or start a new run"
        )
    return payload


def load_model_state(module: nn.Module, state: dict[str, Any], path: Path) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(f"checkpoint {path} does not fit this model: {first}") from exc
