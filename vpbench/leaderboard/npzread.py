"""Reading a record's ``fixed_sequences.npz`` with bounded memory.

The file comes with a record from anywhere. Only the members a leaderboard needs are read, by
name; each member's ``.npy`` header (shape, dtype) is checked against what the record says
before a byte of its data is read, so a small file with a huge extra member (zeros compress
1000:1) costs nothing, and a member whose header promises gigabytes is refused.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..npyformat import read_npy_header

__all__ = ["MAX_MEMBER_BYTES", "read_members"]

#: the largest member read (the fixed clips of 128×128 KTH at 30 frames are ~2 MB)
MAX_MEMBER_BYTES = 64 * 2**20

Check = Callable[[tuple[int, ...], np.dtype], str | None]


def _header(z: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    with z.open(member) as f:
        return read_npy_header(f)


def read_members(path: Path, checks: dict[str, Check], optional: Sequence[str] = ()) -> dict[str, np.ndarray] | str:
    """The arrays named in ``checks`` (``name -> check(shape, dtype)`` returning a problem or
    None), or one line on why not. Names in ``optional`` may be absent; other members are ignored."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            out: dict[str, np.ndarray] = {}
            for name, check in checks.items():
                member = f"{name}.npy"
                if member not in names:
                    if name in optional:
                        continue
                    return f"has a fixed_sequences.npz without {name!r}"
                shape, dtype = _header(z, member)
                if dtype.hasobject or dtype.kind not in "iub":
                    return f"has a fixed_sequences.npz whose {name!r} is {dtype}, not integers"
                size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if size > MAX_MEMBER_BYTES or z.getinfo(member).file_size > MAX_MEMBER_BYTES + 4096:
                    return f"has a fixed_sequences.npz whose {name!r} is over {MAX_MEMBER_BYTES // 2**20} MiB; left out"
                problem = check(shape, dtype)
                if problem is not None:
                    return f"has a fixed_sequences.npz whose {name!r} {problem}"
                with z.open(member) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
            return out
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        return f"has an unreadable fixed_sequences.npz ({type(exc).__name__})"
