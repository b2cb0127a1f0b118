"""Checked caches beside the data: results that are pure functions of what their key names.

A :class:`CheckedStore` keeps one ``.npz`` per key under ``<data root>/.vpbench-cache/<kind>/``.
Each file holds its key (canonical JSON) and a sha256 over the key and every array; a file
is used only when both match, so a corrupted, truncated or stale file (a changed key: new
data checksum, metric version, clip count ...) is a miss and is recomputed. Files are
written to a temporary file and renamed (:func:`vpbench.fsutil.atomic_path`); a data root
that cannot be written only costs the reuse, never the run.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StorageError
from ..fsutil import atomic_path

__all__ = ["CACHE_DIR", "CheckedStore", "canonical"]

#: the cache folder inside the data root
CACHE_DIR = ".vpbench-cache"
_KEY, _SHA = "__key__", "__sha256__"


def canonical(key: Mapping[str, Any]) -> str:
    """The key as canonical JSON (sorted keys, no spaces): what the file name and checksum hash."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _digest(key_json: str, arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256(key_json.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class CheckedStore:
    """Arrays stored by key, verified by checksum on every read."""

    def __init__(self, data_root: Path, kind: str) -> None:
        self.dir = data_root / CACHE_DIR / kind

    def path(self, key: Mapping[str, Any]) -> Path:
        return self.dir / (hashlib.sha256(canonical(key).encode()).hexdigest()[:40] + ".npz")

    def load(self, key: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``; ``None`` when absent, unreadable, stale or corrupted."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None
        stored_key, stored_sha = arrays.pop(_KEY, None), arrays.pop(_SHA, None)
        if stored_key is None or stored_sha is None:
            return None
        key_json = canonical(key)
        try:
            if stored_key.tobytes().decode() != key_json or stored_sha.tobytes().decode() != _digest(key_json, arrays):
                return None
        except UnicodeDecodeError:
            return None
        return arrays

    def save(self, key: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bool:
        """Store ``arrays`` under ``key`` atomically; ``False`` when the data root is not writable."""
        key_json = canonical(key)
        payload = {
            **{name: np.ascontiguousarray(a) for name, a in arrays.items()},
            _KEY: np.frombuffer(key_json.encode(), dtype=np.uint8),
            _SHA: np.frombuffer(_digest(key_json, arrays).encode(), dtype=np.uint8),
        }
        try:
            with atomic_path(self.path(key)) as tmp, tmp.open("wb") as fh:
                np.savez(fh, **payload)  # type: ignore[arg-type]
        except (StorageError, OSError):
            return False
        return True
