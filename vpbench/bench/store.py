"""The driver-side store of run state: where a run on any node keeps its latest checkpoint.

A Ray actor pinned to the driver's node. A run sends its resumable state (``run.yaml`` and
``checkpoints/``) after every validation pass; the store writes it into the run's folder
under ``--out`` on the driver's machine, so a retry after the loss of the node that ran it
resumes from there. ``--out`` needs no storage shared between the nodes.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

from ..fsutil import atomic_write_text
from ..tune.pack import unpack_dir

__all__ = ["RunStore", "STATE_FILE", "pack_state"]

#: written beside a stored state: the step and node it was taken at (dropped when the run finishes)
STATE_FILE = "bench-state.json"
_STATE = ("run.yaml", "checkpoints/last.pt", "checkpoints/best.pt")


def pack_state(run_dir: Path) -> bytes:
    """The resumable part of a run directory (config and checkpoints) as a tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in _STATE:
            if (run_dir / name).is_file():
                tar.add(run_dir / name, arcname=name)
    return buf.getvalue()


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

