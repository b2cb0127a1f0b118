"""Atomic file writes: a reader never sees a half-written cache, checkpoint or record.

Write failures the user can fix (a read-only or full disk, a file where a folder should
be) become a one-line :class:`~vpbench.errors.StorageError` naming the path and the free
space. A temporary file left by a writer that was killed is removed by the next write.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import StorageError

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_json", "free_space", "make_dirs", "pid_alive", "storage_error"]

#: errors of our own file operations (create a folder, a temp file, rename it) that the user fixes
_OWN = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR}
#: errors while writing a temp file's bytes
_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[^.]+\.tmp$")


def free_space(path: Path) -> str:
    """``'12.3 MiB free'`` on the disk holding ``path`` (or its nearest existing parent)."""
    for p in (path, *path.parents):
        try:
            return f"{shutil.disk_usage(p).free / 2**20:,.1f} MiB free"
        except OSError:
            continue
    return "free space unknown"


def storage_error(path: Path, exc: OSError) -> StorageError:
    """The one-line error for a failed write of ``path``: what, where, how much room, the fix."""
    why = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "a file is in the way of a folder",
        errno.EISDIR: "a folder is in the way of a file",
    }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    fix = "free space or choose another folder" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "choose a writable folder"
    return StorageError(f"cannot write {path}: {why} ({free_space(path.parent)}); {fix}")


def make_dirs(path: Path) -> None:
    """``mkdir -p``; a file in the way or a read-only disk is a :class:`StorageError`."""
    if path.exists() and not path.is_dir():
        raise StorageError(f"cannot write {path}: it is a file, not a folder; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in _OWN:
            raise storage_error(path, exc) from None
        raise


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a writer that may still be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(path: Path) -> None:
    """Remove temp files of ``path`` whose writer process is gone (killed mid-write)."""
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        m = _TMP.match(entry.name)
        if m and m.group("name") == path.name and not pid_alive(int(m.group("pid"))):
            try:
                os.unlink(entry.path)
            except OSError:
                pass


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is
    left as it was.
    """
    make_dirs(path.parent)
    _clean_stale(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno in _OWN:
            raise storage_error(path, exc) from None
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
        except OSError as exc:
            if exc.errno in _WRITE:
                raise storage_error(path, exc) from None
            raise
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno in _OWN:
                raise storage_error(path, exc) from None
            raise
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n")
