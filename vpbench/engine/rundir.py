"""One run directory, one writer: an inter-process lock held for the life of a run.

The lock file (``.run.lock``) sits inside the run directory, which is created only once
the whole request has been validated. The holder's PID is kept in ``.run.pid`` so that a
second ``vpbench run`` on the same ``--out`` can say who holds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import RunLockedError
from ..fsutil import atomic_write_text, make_dirs

__all__ = ["LOCK_NAME", "PID_NAME", "run_lock"]

LOCK_NAME = ".run.lock"
PID_NAME = ".run.pid"


def _holder(root: Path) -> str:
    try:
        pid = (root / PID_NAME).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):
        return "PID unknown"
    return f"PID {pid}" if pid.isdigit() else "PID unknown"


@contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Create ``root`` and hold its lock until the block ends; a held lock is a one-line error."""
    make_dirs(root)
    lock = FileLock(str(root / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"run directory {root} is in use by another vpbench process ({_holder(root)}); wait for it to "
            f"finish or stop it, or choose another --out"
        ) from None
    try:
        atomic_write_text(root / PID_NAME, f"{os.getpid()}\n")
        yield
    finally:
        (root / PID_NAME).unlink(missing_ok=True)
        lock.release()
