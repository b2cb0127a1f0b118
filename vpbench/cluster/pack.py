"""A run directory as bytes and back: how runs travel between cluster nodes and the driver."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["RESUMABLE", "pack_dir", "unpack_dir", "replace_dir", "recover_dir", "copy_state", "pack_state"]

#: The resumable part of a run directory: its spec and checkpoints (what ``--resume`` needs).
RESUMABLE = ("run.yaml", "checkpoints/last.pt", "checkpoints/best.pt")


def pack_dir(root: Path) -> bytes:
    """An uncompressed tar of the files under ``root`` (paths relative to it)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(root)))
    return buf.getvalue()


def unpack_dir(data: bytes, dest: Path, *, replace: bool = False) -> None:
    """Extract :func:`pack_dir`'s bytes into ``dest`` atomically (:func:`replace_dir`)."""

    def extract(tmp: Path) -> None:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(tmp, filter="data")

    replace_dir(dest, extract, replace=replace)


def replace_dir(dest: Path, fill: Callable[[Path], None], *, replace: bool = True) -> None:
    """Make ``dest`` the folder that ``fill`` writes, atomically.

    ``dest`` must not exist unless ``replace`` is set. ``fill`` writes the new directory beside
    it, the old one is renamed aside, the new one renamed into place, and only then the old one
    removed: a reader never sees half a directory, and a kill at any point leaves a complete
    one (``dest``, or the old one under ``.<name>.old-*`` when the kill fell between the renames;
    :func:`recover_dir` puts that back).
    """
    if dest.exists() and not replace:
        raise FileExistsError(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    old: Path | None = None
    try:
        fill(tmp)
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            old.rmdir()
            dest.rename(old)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(dest: Path) -> None:
    """After a kill between :func:`unpack_dir`'s two renames, put the old directory back."""
    if dest.exists():
        for stale in dest.parent.glob(f".{dest.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return
    olds = sorted(dest.parent.glob(f".{dest.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        olds[-1].rename(dest)


def copy_state(run_dir: Path, dest: Path) -> None:
    """Copy the :data:`RESUMABLE` files of ``run_dir`` that exist into ``dest``."""
    for name in RESUMABLE:
        if (run_dir / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / name, dest / name)


def pack_state(run_dir: Path) -> bytes:
    """The :data:`RESUMABLE` files of ``run_dir`` as :func:`pack_dir`'s bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in RESUMABLE:
            if (run_dir / name).is_file():
                tar.add(run_dir / name, arcname=name)
    return buf.getvalue()
