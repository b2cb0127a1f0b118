"""The data root's manifest: the SHA-256 of every fetched or placed file that has no
published checksum, recorded on first preparation and verified on every later use.

``<data root>/manifest.json`` maps a path relative to the data root to ``{"sha256",
"size"}``. A file whose bytes change after it was recorded (a swapped, truncated or
tampered file) is refused with a one-line error naming both hashes and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..errors import DataError
from ..fsutil import atomic_write_json
from .download import file_digest

__all__ = ["MANIFEST", "Manifest"]

MANIFEST = "manifest.json"


class Manifest:
    """SHA-256 of the files under ``root`` (the data root) without a published checksum."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / MANIFEST

    def _key(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"manifest {self.path} is unreadable ({type(exc).__name__}); delete it to record the files' hashes afresh"
            ) from None
        if not isinstance(data, dict):
            raise DataError(f"manifest {self.path} is not a JSON object; delete it to record the files' hashes afresh")
        return data

    def recorded(self, path: Path) -> str | None:
        entry = self._read().get(self._key(path))
        return str(entry["sha256"]) if isinstance(entry, dict) and "sha256" in entry else None

    def check(self, path: Path, *, pinned: str | None = None, fix: str = "") -> str:
        """Verify ``path`` against ``pinned`` (a published hash) or its recorded hash, recording it
        when neither exists; return its sha256."""
        digest = file_digest(path, "sha256")
        tail = f"; {fix}" if fix else ""
        if pinned is not None:
            if digest != pinned.lower():
                raise DataError(f"sha256 mismatch for {path}: expected {pinned}, got {digest}; delete it and prepare again{tail}")
            return digest
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / f".{MANIFEST}.lock")):
            data = self._read()
            key = self._key(path)
            entry = data.get(key)
            if isinstance(entry, dict) and "sha256" in entry:
                if entry["sha256"] != digest:
                    raise DataError(
                        f"{path} changed since it was first prepared: sha256 {digest}, manifest {self.path} "
                        f"records {entry['sha256']}; restore the original file, or delete it and its entry "
                        f"{key!r} in the manifest and prepare again{tail}"
                    )
                return digest
            data[key] = {"sha256": digest, "size": path.stat().st_size}
            atomic_write_json(self.path, dict(sorted(data.items())))
        return digest
