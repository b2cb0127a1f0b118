"""How many intra-op threads PyTorch uses for a run.

Measured on this project's shared 2-core CPU (issue 12): with 2 threads under load a
training step was 4-27x slower than with 1, because every op waits for the busiest core.
The default is therefore one thread on machines with at most 4 usable cores and half the
usable cores above that; ``threads`` in the run config (or ``OMP_NUM_THREADS``, which it
overrides) sets it explicitly. A fixed thread count keeps a run bitwise reproducible with
the same seed on the same machine.
"""

from __future__ import annotations

import os

import torch

__all__ = ["usable_cores", "default_threads", "apply_threads"]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask when the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int | None = None, env: str | None = None) -> int:
    """``OMP_NUM_THREADS`` when set to a positive integer, else 1 up to 4 cores, else half."""
    if env is None:
        env = os.environ.get("OMP_NUM_THREADS")
    if env is not None and env.strip().isdigit() and int(env) > 0:
        return int(env)
    cores = usable_cores() if cores is None else cores
    return 1 if cores <= 4 else cores // 2


def apply_threads(requested: int | None) -> int:
    """Set PyTorch's intra-op threads to ``requested`` (or the default); return the count."""
    n = requested if requested is not None else default_threads()
    torch.set_num_threads(n)
    return n
