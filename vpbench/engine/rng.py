"""Seeding and capturing random state so that resumed runs reproduce uninterrupted ones.

A captured state holds only tensors, ints, strings and tuples, so a checkpoint holding it
loads with ``torch.load(weights_only=True)`` (no code runs while reading it).
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

__all__ = ["seed_everything", "deterministic_kernels", "capture_rng", "restore_rng"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def deterministic_kernels(device: torch.device) -> None:
    """On CUDA, choose deterministic kernels so that a seeded run, and a resumed one, repeat exactly.

    cuDNN's autotuner and some of its algorithms, cuBLAS with a shared workspace, and ops that
    accumulate with atomic adds (index_add, scatter_add, embedding backward) give results that
    differ in their last bits from one call to the next; vector quantisation and sampling turn
    such differences into different runs. This makes cuDNN deterministic and asks PyTorch for
    deterministic algorithms; an op that has none warns (``warn_only``) instead of failing the
    run. ``CUBLAS_WORKSPACE_CONFIG`` only takes effect when set before the process's first cuBLAS
    call, so it is set here only when the user has not set it. Nothing changes on the CPU, where
    a fixed thread count already makes runs repeat.
    """
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def capture_rng() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        # the numpy state as plain values: an ndarray would need pickled code to load
        "numpy": (str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
