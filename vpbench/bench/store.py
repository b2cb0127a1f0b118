"""Where a suite's run states land: each run's folder under ``--out`` on the driver's machine.

Every message of a run (:mod:`vpbench.cluster.transport`) is written there as it arrives,
with an atomic replace: after a validation pass its resumable state (``run.yaml`` and
``checkpoints/``) plus :data:`STATE_FILE` (the step and node it was taken at), at the end the
finished run directory (without that file). A retry after the loss of the node that ran it,
or a later ``vpbench bench`` on the same ``--out``, resumes from there. ``--out`` needs no
storage shared between the nodes; with ``--shared-out`` (:mod:`vpbench.cluster.shared`) the
nodes write these folders themselves (:data:`STATE_FILE` too) and nothing is written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..cluster.pack import pack_state, recover_dir
from ..cluster.transport import receive
from ..fsutil import atomic_write_text

__all__ = ["STATE_FILE", "store_message", "stored_state"]

#: written beside a stored state: the step and node it was taken at (dropped when the run finishes)
STATE_FILE = "bench-state.json"


def store_message(message: tuple[str, int, Any, str], dest: Path) -> None:
    """Write one message of the run into its folder ``dest``."""

    def mark(root: Path, step: int, host: str) -> None:
        atomic_write_text(root / STATE_FILE, json.dumps({"step": step, "host": host}) + "\n")

    receive(message, dest, on_state=mark)


def stored_state(root: Path) -> bytes | None:
    """The resumable state stored in ``root`` (read from disk when a run is submitted), or None."""
    recover_dir(root)
    return pack_state(root) if (root / "run.yaml").is_file() else None
