"""KTH videos on disk: find them, decode them once, cache the frames as uint8 arrays.

Two layouts are read under ``<data root>/kth/``:

* raw AVIs ``personNN_action_dK_uncomp.avi`` anywhere below it (the official zips);
* PredRNN / OpenSTL frame folders ``<action>/personNN_action_dK_uncomp/image_0001.jpg``
  (frame number = the digits after ``image_``).

Each video is decoded once into ``kth/cache/<video>-<kind>.npy`` (``[N, H, W]`` uint8, the
frame's channel 0, as OpenSTL reads it) plus ``<video>-<kind>.json`` (frame numbers, the
array's sha256 and the source's size and mtime). Both are written to temporary files and
renamed, the JSON last: a crash leaves no cache entry that looks complete, and the next
prepare decodes that video again.

The recorded sha256 is what the data checksum of a record is built from, so the bytes read
must be those bytes: :meth:`Cache.verify` hashes the array's data and compares. Hashing the
whole cache (about 6 GB for KTH) in every process would cost seconds, so a verified entry
stores the array file's *verification stamp*: size, mtime, ctime and inode. Writing to the
file (in place, same size) changes its mtime and ctime; setting the mtime back with
``touch``/``os.utime`` changes the ctime, which no user call can set. So while the stamp
holds the bytes are the hashed ones, and any change is hashed again on next use. (What the
stamp cannot see: writes to the raw disk, or the clock set back; a deliberate forger with
write access to the cache can also rewrite the JSON itself.) Where ctime is not a change
time (Windows), there is no stamp and every process hashes once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vpbench.data.manifest import Manifest
from vpbench.errors import DataError
from vpbench.fsutil import atomic_path, atomic_write_json
from vpbench.npyformat import read_npy_header

ACTIONS = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
VIDEO_RE = re.compile(r"^person(\d{2})_(" + "|".join(ACTIONS) + r")_d(\d)(?:_uncomp)?$")
IMAGE_RE = re.compile(r"^image_(\d+)\.(?:jpg|jpeg|png|bmp)$", re.IGNORECASE)
CACHE_DIR = "cache"
CACHE_VERSION = 1

Kind = Literal["avi", "frames"]


@dataclass(frozen=True)
class Video:
    """One KTH recording: ``person``, ``action``, scenario ``d`` and where its frames are."""

    person: int
    action: str
    scenario: int
    kind: Kind
    path: Path

    @property
    def key(self) -> str:
        """``person01_boxing_d1``, the name ``00sequences.txt`` uses."""
        return f"person{self.person:02d}_{self.action}_d{self.scenario}"


def parse_name(name: str) -> tuple[int, str, int] | None:
    m = VIDEO_RE.match(name)
    return (int(m.group(1)), m.group(2), int(m.group(3))) if m else None


def _image_files(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for entry in os.scandir(folder):
        m = IMAGE_RE.match(entry.name)
        if m and entry.is_file():
            out.append((int(m.group(1)), Path(entry.path)))
    return sorted(out)


def discover(root: Path) -> list[Video]:
    """Every AVI and frame folder under ``root`` (skipping the cache), sorted by name."""
    found: list[Video] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in dirnames:
            ident = parse_name(d)
            if ident is not None:
                found.append(Video(*ident, "frames", here / d))
            elif not (here == root and d == CACHE_DIR) and not d.startswith("."):
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            if f.lower().endswith(".avi"):
                ident = parse_name(f[:-4])
                if ident is not None:
                    found.append(Video(*ident, "avi", here / f))
    return sorted(found, key=lambda v: (v.action, v.person, v.scenario, v.kind, str(v.path)))


def choose(videos: Iterable[Video], source: Literal["auto", "avi", "frames"]) -> list[Video]:
    """One source per recording: frame folders win under ``auto`` (the published tables used them)."""
    best: dict[str, Video] = {}
    for v in videos:
        if source != "auto" and v.kind != source:
            continue
        if v.key not in best or (v.kind == "frames" and best[v.key].kind == "avi"):
            best[v.key] = v
    return sorted(best.values(), key=lambda v: (v.action, v.person, v.scenario))


# ----------------------------------------------------------------------------- decoding


def _stamp(video: Video) -> list[int]:
    st = video.path.stat()
    return [st.st_size, st.st_mtime_ns]


def decode_avi(path: Path) -> np.ndarray:
    """All frames of an AVI, channel 0 of RGB: ``[N, H, W]`` uint8. Corrupt files name themselves."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path} has no video stream; delete it and prepare again")
            stream = container.streams.video[0]
            declared = int(stream.frames or 0)
            frames = [f.to_ndarray(format="rgb24")[:, :, 0] for f in container.decode(stream)]
    except DataError:
        raise
    except Exception as exc:  # PyAV raises a family of FFmpegError / ValueError / OSError
        raise DataError(f"{path} is not a readable AVI ({type(exc).__name__}: {exc}); delete it and prepare again") from exc
    if not frames:
        raise DataError(f"{path} decodes to no frames (corrupt or truncated); delete it and prepare again")
    if declared and len(frames) < declared:
        raise DataError(
            f"{path} is truncated: its header declares {declared} frames, {len(frames)} decode; "
            "delete it and prepare again"
        )
    return np.stack(frames)


def read_folder(folder: Path) -> tuple[np.ndarray, list[int]]:
    """Frames of a PredRNN-style folder, channel 0: ``[N, H, W]`` uint8 and their numbers."""
    from PIL import Image

    files = _image_files(folder)
    if not files:
        raise DataError(f"{folder} holds no image_NNNN.jpg/png frames")
    frames = []
    for _, f in files:
        try:
            with Image.open(f) as img:
                a = np.asarray(img)
        except Exception as exc:
            raise DataError(f"{f} is not a readable image ({exc}); delete it and prepare again") from exc
        frames.append(a[:, :, 0] if a.ndim == 3 else a)
    try:
        return np.stack(frames).astype(np.uint8, copy=False), [n for n, _ in files]
    except ValueError as exc:
        raise DataError(f"{folder}: frames differ in size ({exc})") from exc


def frame_numbers(video: Video) -> list[int]:
    """Frame numbers without decoding: folder file names, or 1..N from the AVI header."""
    if video.kind == "frames":
        return [n for n, _ in _image_files(video.path)]
    import av

    try:
        with av.open(str(video.path)) as container:
            n = int(container.streams.video[0].frames or 0)
    except Exception as exc:
        raise DataError(f"{video.path} is not a readable AVI ({type(exc).__name__}: {exc})") from exc
    return list(range(1, n + 1))


# -------------------------------------------------------------------------------- cache


#: arrays whose header was checked, by (path, size, mtime): a check costs an mmap, a hit a stat
_checked: dict[tuple[str, int, int], bool] = {}
#: arrays whose data was hashed in this process, by their stamp: the sha256 found
_hashed: dict[tuple[str, ...], str] = {}
_BLOCK = 8 << 20


def file_stamp(path: Path) -> list[int] | None:
    """Size, mtime, ctime and inode of ``path``: changes with any write to it (``None`` off POSIX)."""
    if os.name != "posix":
        return None
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def array_digest(path: Path) -> str:
    """sha256 of the data of a ``.npy`` file (what ``frames.tobytes()`` hashed when it was written).

    Bytes after the data (which ``np.save`` never writes) are hashed too, so they mismatch.
    """
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            read_npy_header(f)  # ValueError on anything numpy does not write
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
    except (ValueError, OSError, EOFError):
        return "unreadable"
    return h.hexdigest()


def _array_matches(array: Path, meta: dict[str, Any]) -> bool:
    """The cached array is whole and is the one ``meta`` describes (a truncated or foreign one is not)."""
    try:
        st = array.stat()
    except OSError:
        return False
    key = (str(array), st.st_size, st.st_mtime_ns)
    if key not in _checked:
        try:
            head: np.ndarray = np.load(array, mmap_mode="r", allow_pickle=False)
            _checked[key] = list(head.shape) == meta.get("shape") and head.dtype == np.uint8
        except (ValueError, OSError, EOFError):
            _checked[key] = False
    return _checked[key] and len(meta["numbers"]) == meta["shape"][0]


class Cache:
    """The decoded-frame cache in ``<kth>/cache``."""

    def __init__(self, folder: Path, manifest: Manifest | None = None, pinned: dict[str, str] | None = None) -> None:
        self.folder = folder
        #: where the AVIs' SHA-256 are recorded on first decode and verified on every later one
        self.manifest = manifest
        #: published SHA-256 of source files by name: checked on every decode, never recorded over
        self.pinned = pinned or {}

    def paths(self, video: Video) -> tuple[Path, Path]:
        stem = f"{video.key}-{video.kind}"
        return self.folder / f"{stem}.npy", self.folder / f"{stem}.json"

    def meta(self, video: Video) -> dict[str, Any] | None:
        """The entry's metadata when it is complete and matches the source, else ``None``."""
        array, meta_path = self.paths(video)
        try:
            meta: dict[str, Any] = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION or meta.get("source_stamp") != _stamp(video):
            return None
        if not isinstance(meta.get("numbers"), list) or not isinstance(meta.get("sha256"), str) or not array.is_file():
            return None
        return meta if _array_matches(array, meta) else None

    def build(self, video: Video) -> dict[str, Any]:
        """Decode ``video`` and write its entry atomically (array first, metadata last)."""
        if video.kind == "avi":
            pin = self.pinned.get(video.path.name)
            if pin is not None:  # a published video, downloaded or placed by hand: checked on every decode
                Manifest(video.path.parent).check(
                    video.path, pinned=pin, fix="or put the original KTH video there (the official zip of its action holds it)"
                )
            elif self.manifest is not None:
                self.manifest.check(video.path, fix="a changed source video would change every result on it")
            frames = decode_avi(video.path)
            numbers = list(range(1, len(frames) + 1))
        else:
            frames, numbers = read_folder(video.path)
        array_path, meta_path = self.paths(video)
        with atomic_path(array_path) as tmp:
            with tmp.open("wb") as f:
                np.save(f, np.ascontiguousarray(frames))
        meta = {
            "version": CACHE_VERSION,
            "video": video.key,
            "kind": video.kind,
            "source": str(video.path),
            "source_stamp": _stamp(video),
            "shape": list(frames.shape),
            "numbers": numbers,
            "sha256": hashlib.sha256(frames.tobytes()).hexdigest(),
        }
        stamp = file_stamp(array_path)  # hashed just now, from memory: no need to read it back
        if stamp is not None:
            meta["verified"] = stamp
            _hashed[(str(array_path), *map(str, stamp))] = meta["sha256"]
        atomic_write_json(meta_path, meta)
        return meta

    def verify(self, video: Video, meta: dict[str, Any]) -> str | None:
        """``None`` when the cached array holds the bytes ``meta`` records, else the sha256 it holds.

        Hashes the array unless its stamp (see the module docstring) is the one recorded at
        the last verification; once per process and stamp otherwise.
        """
        array_path, meta_path = self.paths(video)
        stamp = file_stamp(array_path)
        if stamp is not None and meta.get("verified") == stamp:
            return None
        key = (str(array_path), *map(str, stamp or [os.getpid()]))
        digest = _hashed.get(key)
        if digest is None:
            digest = _hashed[key] = array_digest(array_path)
        if digest != meta["sha256"]:
            return digest
        if stamp is not None:
            try:  # remember the verification: the next process only stats the file
                if self.meta(video) == meta and file_stamp(array_path) == stamp:  # not rebuilt meanwhile
                    atomic_write_json(meta_path, {**meta, "verified": stamp})
            except OSError:
                pass  # a read-only data root: hashed once per process instead
        return None

    def missing(self, videos: Iterable[Video]) -> Iterator[Video]:
        return (v for v in videos if self.meta(v) is None)

    def open(self, video: Video) -> np.ndarray:
        array_path, _ = self.paths(video)
        try:
            array: np.ndarray = np.load(array_path, mmap_mode="r", allow_pickle=False)
            return array
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"cache file {array_path} is unreadable ({exc}); delete it and prepare again") from exc
