"""Checkpoints: written atomically; read without running code; another model's is refused.

Every checkpoint is read with ``torch.load(weights_only=True)``: only tensors and plain data
(dicts, lists, tuples, strings, numbers) can be in it, so a crafted file cannot run code
while it is read. A file that holds anything else is refused with a one-line error.
"""

from __future__ import annotations

import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, StorageError
from ..fsutil import atomic_path, free_space
from ..names import quote, shorten

__all__ = ["FORMAT", "RESUME_FIX", "save_checkpoint", "load_checkpoint", "load_model_state", "load_optimizer_state"]

FORMAT = "vpbench.checkpoint/1"
#: the fix for a bad checkpoint of a run being resumed (``vpbench eval --checkpoint FILE`` gives its own)
RESUME_FIX = "delete it (or the run directory) and train again, or point --out at another run"


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


#: bytes of a pickle stream inspected (never run) to tell a crafted file from a corrupt one
_PICKLE_PEEK = 64 << 20


def _is_pickle(path: Path) -> bool:
    """Whether ``path`` (a torch zip archive or a legacy file) holds a well-formed pickle stream.

    Only :mod:`pickletools` reads the opcodes: nothing is imported or called.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                if not names:
                    return False
                with zf.open(names[0]) as fh:
                    data = fh.read(_PICKLE_PEEK)
        else:
            with path.open("rb") as fh:
                data = fh.read(_PICKLE_PEEK)
        for _ in pickletools.genops(data):
            pass
    except Exception:  # any parse failure means: not a well-formed pickle  # noqa: BLE001
        return False
    return True


def load_checkpoint(path: Path, *, model: str, model_config: dict[str, Any], fix: str = RESUME_FIX) -> dict[str, Any]:
    """Read a checkpoint (tensors and plain data only) and check it belongs to ``model`` with ``model_config``.

    Failures are told apart by exception type, never by torch's wording (which changes
    between releases); ``fix`` is what the command's user should do about a bad file.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused it; whether it is a well-formed pickle of other objects (crafted, or
        # foreign) or garbage is read from its structure, not from torch's wording
        if _is_pickle(path):
            raise CheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain data (it could run code: a crafted "
                f"file, or one written by another program or an older vpbench), so it was not loaded; {fix}"
            ) from None
        raise CheckpointError(f"checkpoint {path} is unreadable (not a torch checkpoint, or corrupt); {fix}") from None
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}: truncated or corrupt); {fix}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vpbench checkpoint (format {FORMAT}); {fix}")
    if payload.get("model") != model:
        raise CheckpointError(
            f"checkpoint {path} is of model {quote(payload.get('model'))}, not {model!r}; give a checkpoint of "
            f"{model!r} (a run of {quote(payload.get('model'))} is evaluated from its own run directory)"
        )
    saved_cfg = payload.get("model_config", {})
    if not isinstance(saved_cfg, dict):
        raise CheckpointError(f"checkpoint {path} has a malformed model_config; {fix}")
    if saved_cfg != model_config:
        diff = sorted(str(k) for k in set(saved_cfg) | set(model_config) if saved_cfg.get(k) != model_config.get(k))
        raise CheckpointError(
            f"checkpoint {path} was trained with another config of {model!r} (differs in: {shorten(', '.join(diff))}); "
            f"use the run's own config or start a new run"
        )
    if not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"checkpoint {path} has no state_dict of tensors; {fix}")
    return payload


def load_model_state(module: nn.Module, state: dict[str, Any], path: Path, fix: str = RESUME_FIX) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError, KeyError) as exc:
        lines = str(exc).splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(exc)
        raise CheckpointError(f"checkpoint {path} does not fit this model: {shorten(first)}; {fix}") from None


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any], path: Path, fix: str = RESUME_FIX) -> None:
    """Restore an optimiser's state, checked against its parameters' shapes.

    ``Optimizer.load_state_dict`` checks only the number of parameters; a state tensor of
    another shape would fail at the next step, deep in the update. It is refused here.
    """
    try:
        opt.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} has an optimiser state that does not fit this model ({type(exc).__name__}); {fix}"
        ) from None
    for group in opt.param_groups:
        for i, p in enumerate(group["params"]):
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != p.shape:
                    raise CheckpointError(
                        f"checkpoint {path} has an optimiser state that does not fit this model (its {key!r} of "
                        f"parameter {i} has shape {list(value.shape)}, the parameter {list(p.shape)}); {fix}"
                    )
