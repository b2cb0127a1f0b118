"""Checkpoints: written atomically; read without running code; another model's is refused.

Every checkpoint is read with ``torch.load(weights_only=True)``: only tensors and plain data
(dicts, lists, tuples, strings, numbers) can be in it, so a crafted file cannot run code
while it is read. A file that holds anything else is refused with a one-line error.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, StorageError
from ..fsutil import atomic_path, free_space

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "load_model_state"]

FORMAT = "vpbench.checkpoint/1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        try:
            torch.save({"format": FORMAT, **payload}, tmp)
        except RuntimeError as exc:  # torch reports a failed write (full disk) as a RuntimeError
            if "write" not in str(exc).lower() and "unexpected pos" not in str(exc):
                raise
            raise StorageError(
                f"cannot write checkpoint {path}: {str(exc).splitlines()[0]} ({free_space(path.parent)}); "
                f"free space or choose another --out"
            ) from None


def _refused(path: Path) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} holds objects other than tensors and plain data (it could run code: a crafted file, "
        f"or one written by an older vpbench), so it was not loaded; delete it (or the run directory) and train again"
    )


def load_checkpoint(path: Path, *, model: str, model_config: dict[str, Any]) -> dict[str, Any]:
    """Read a checkpoint (tensors and plain data only) and check it belongs to ``model`` with ``model_config``."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global it does not know: a crafted or foreign pickle
        if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
            raise _refused(path) from None
        raise CheckpointError(
            f"checkpoint {path} is unreadable (UnpicklingError); delete it to restart the run, "
            f"or point --out at another run"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to restart the run, "
            f"or point --out at another run"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vpbench checkpoint (format {FORMAT}); give a vpbench run directory")
    if payload.get("model") != model:
        raise CheckpointError(
            f"checkpoint {path} is of model {payload.get('model')!r}, not {model!r}; use --model {payload.get('model')}"
        )
    saved_cfg = payload.get("model_config", {})
    if not isinstance(saved_cfg, dict):
        raise CheckpointError(f"checkpoint {path} has a malformed model_config; delete it and train again")
    if saved_cfg != model_config:
        diff = sorted(k for k in set(saved_cfg) | set(model_config) if saved_cfg.get(k) != model_config.get(k))
        raise CheckpointError(
            f"checkpoint {path} was trained with another config of {model!r} (differs in: {', '.join(diff)}); "
            f"use the run's own config or start a new run"
        )
    if not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"checkpoint {path} has no state_dict of tensors; delete it and train again")
    return payload


def load_model_state(module: nn.Module, state: dict[str, Any], path: Path) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        lines = str(exc).splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(exc)
        raise CheckpointError(f"checkpoint {path} does not fit this model: {first}; delete it and train again") from None
