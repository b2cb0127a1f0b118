"""Read IDX files (the MNIST format), plain or gzip-compressed, with errors that name the file.

Layout: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one
big-endian uint32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["read_idx"]

_DTYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _bad(path: Path, why: str) -> DataError:
    return DataError(f"{path} is not a valid IDX file ({why}); delete it and run the prepare command again")


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (``.gz`` by magic bytes, else raw) into an array of its shape."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise _bad(path, f"corrupt or truncated gzip data: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise _bad(path, "missing the IDX magic number")
    dtype = _DTYPES.get(raw[2])
    if dtype is None:
        raise _bad(path, f"unknown type code 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise _bad(path, "truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        raise _bad(path, f"{len(raw)} bytes where shape {tuple(shape)} needs {expected}; truncated")
    data: np.ndarray = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)
