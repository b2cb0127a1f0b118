"""The driver-side store of run state: where a run on any node keeps its latest checkpoint.

A Ray actor pinned to the driver's node. A run sends its resumable state (``run.yaml`` and
``checkpoints/``) after every validation pass; the store writes it into the run's folder
under ``--out`` on the driver's machine, so a retry after the loss of the node that ran it
resumes from there. ``--out`` needs no storage shared between the nodes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..fsutil import atomic_write_text
from ..tune.pack import pack_state, unpack_dir

__all__ = ["RunStore", "STATE_FILE"]

#: written beside a stored state: the step and node it was taken at (dropped when the run finishes)
STATE_FILE = "bench-state.json"


class RunStore:
    """Writes and reads run states under ``out`` (an absolute path on the driver's machine)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)

    def put(self, key: str, step: int, host: str, state: bytes) -> None:
        dest = self.out / key
        unpack_dir(state, dest, replace=True)
        atomic_write_text(dest / STATE_FILE, json.dumps({"step": step, "host": host}) + "\n")

    def get(self, key: str) -> bytes | None:
        """The stored state of ``key``, or None when it holds no resumable run."""
        root = self.out / key
        return pack_state(root) if (root / "run.yaml").is_file() else None

    def finish(self, key: str, packed: bytes) -> None:
        """Replace the stored state by the finished run directory."""
        unpack_dir(packed, self.out / key, replace=True)

    def clear(self, key: str) -> None:
        """Remove a folder that holds no resumable run (a start that failed before its first checkpoint)."""
        shutil.rmtree(self.out / key, ignore_errors=True)

