"""``--shared-out``: a run writes its states and its finished directory straight to ``--out``.

When ``--out`` is on a file system every node mounts at the same path, the node that runs a
run writes into the run's folder there itself, with the same atomic replace the driver uses
for a streamed message (:func:`vpbench.cluster.pack.replace_dir`: the new folder beside the
old one, a rename, then the old one removed), and the transport's messages carry only the step
and the node. A resumed run or a retry reads its state from that folder on its node. The driver
carries no checkpoint bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError
from .pack import copy_state, recover_dir, replace_dir

__all__ = ["FLAG", "check_reachable", "write_state", "write_done", "load_state"]

#: the command-line flag that turns the mode on (named in errors)
FLAG = "--shared-out"


def check_reachable(run_dir: Path, where: str) -> None:
    """On the node: the folder that holds ``run_dir`` (the driver made it) exists and is writable here."""
    parent = run_dir.parent
    if not parent.is_dir():
        raise ConfigError(
            f"{FLAG}: {parent} does not exist on {where}; mount --out at the same path on every node, or drop {FLAG} "
            "to send the states to the driver"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".shared-out-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"{FLAG}: {parent} is not writable on {where} ({exc.strerror or exc}); give every node write access to "
            f"--out, or drop {FLAG}"
        ) from None


def write_state(run_dir: Path, dest: Path, step: int, where: str, note: str | None) -> None:
    """Replace ``dest`` with the resumable state of ``run_dir``; ``note`` names a JSON file written
    inside it with the state's step and node."""

    def fill(tmp: Path) -> None:
        copy_state(run_dir, tmp)
        if note is not None:
            (tmp / note).write_text(json.dumps({"step": step, "host": where}) + "\n", encoding="utf-8")

    replace_dir(dest, fill)


def write_done(run_dir: Path, dest: Path) -> None:
    """Replace ``dest`` with the finished run directory ``run_dir``."""

    def fill(tmp: Path) -> None:
        shutil.copytree(run_dir, tmp, dirs_exist_ok=True)

    replace_dir(dest, fill)


def load_state(dest: Path, run_dir: Path) -> None:
    """Copy the resumable state in ``dest`` into the node's scratch folder ``run_dir``."""
    recover_dir(dest)
    if not (dest / "run.yaml").is_file():
        raise ConfigError(f"{FLAG}: {dest} holds no run state to resume (no run.yaml)")
    run_dir.mkdir(parents=True, exist_ok=True)
    copy_state(dest, run_dir)
