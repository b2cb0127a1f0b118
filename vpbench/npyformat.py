"""An ``.npy`` stream's header (shape and dtype) read without reading its data.

One reader for every place that must look before it loads: ``vpbench score`` (predictions from
anywhere), the leaderboard's ``fixed_sequences.npz`` members, and the KTH cache's hash of the
bytes after the header.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np

__all__ = ["NpyHeader", "read_npy_header"]

#: what a header declares: the array's shape and dtype
NpyHeader = tuple[tuple[int, ...], np.dtype[Any]]


def read_npy_header(fh: IO[bytes]) -> NpyHeader:
    """Read the magic and header of the ``.npy`` stream ``fh``, leaving it at the first data byte.

    Raises:
        ValueError: not an ``.npy`` stream, or a format version numpy does not write (1.0, 2.0).
    """
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(d) for d in shape), np.dtype(dtype)
