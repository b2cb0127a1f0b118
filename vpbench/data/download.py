"""Fetch dataset files into the data root: mirrors, resume, checksums, locks, atomic writes.

One job: make ``dest_dir / remote.filename`` exist with the right checksum.

* Each URL in :attr:`Remote.urls` is tried in order (the official source first, then its
  mirrors); a failing mirror is reported and the next one tried.
* Bytes go to ``<name>.part`` beside the target. An interrupted download resumes with an
  HTTP ``Range`` request; a server that ignores ``Range`` restarts the file.
* The finished ``.part`` is checked against md5 / sha256 and only then renamed over the
  target (``os.replace``), so a crash never leaves a half-written file under the real name.
* A :class:`filelock.FileLock` beside the target serialises concurrent preparers on one
  node (Ray trials): the second waits, then finds the verified file.
* A file already at the target that fails its checksum is the user's: the error names it,
  the expected and the actual checksum, and it is never deleted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from filelock import FileLock

from ..errors import DataError
from ..fsutil import make_dirs, pid_alive

__all__ = [
    "Remote",
    "file_digest",
    "verify",
    "fetch",
    "lock_for",
    "missing_message",
    "safe_extract_zip",
    "MAX_EXTRACT_BYTES",
]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """A file to fetch.

    Attributes:
        filename: name (or relative path) of the file inside the destination folder.
        urls: full URLs, the official source first, then mirrors.
        md5: expected md5 hex digest, if known.
        sha256: expected sha256 hex digest, if known.
    """

    filename: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None

    @property
    def source(self) -> str:
        return self.urls[0] if self.urls else "(no URL known)"


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file's bytes (``"md5"`` or ``"sha256"``)."""
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _mismatch(path: Path, remote: Remote) -> str | None:
    """A one-line description of the first checksum that does not match, else ``None``."""
    for algorithm, expected in (("md5", remote.md5), ("sha256", remote.sha256)):
        if expected:
            actual = file_digest(path, algorithm)
            if actual != expected.lower():
                return f"{algorithm} mismatch for {path}: expected {expected}, got {actual}"
    return None


def verify(path: Path, remote: Remote) -> None:
    """Raise :class:`DataError` when ``path`` fails a checksum of ``remote``; never deletes it."""
    problem = _mismatch(path, remote)
    if problem is not None:
        raise DataError(
            f"{problem}; the file was left in place: move it away (or delete it) and prepare again, "
            f"or download it by hand from {remote.source}"
        )


def lock_for(path: Path) -> FileLock:
    """The inter-process lock that guards writes to ``path`` (a ``.lock`` file beside it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.parent / f".{path.name}.lock"))


def missing_message(path: Path, prepare_command: str, url: str, extra: str = "") -> str:
    """The one-line message for data that is not there: the path, the fix, the source."""
    tail = f"; {extra}" if extra else ""
    return f"{path} not found: run `{prepare_command}` (downloads from {url}) or place the file there by hand{tail}"


def _download_once(
    url: str, part: Path, timeout: float, report: Callable[[int, int | None], None] | None
) -> None:
    """Append the rest of ``url`` to ``part``, resuming from its current size."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "vpbench"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file already holds every byte
            return
        raise
    with response:
        status = getattr(response, "status", 200)
        if have and status != 206:  # the server ignored Range: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with part.open("ab" if have else "wb") as out:
            done = have
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                done += len(block)
                if report is not None:
                    report(done, total)
        if total is not None and done < total:
            raise OSError(f"connection closed after {done} of {total} bytes")


def fetch(
    remote: Remote,
    dest_dir: Path,
    *,
    prepare_command: str,
    progress: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Make ``dest_dir / remote.filename`` present and verified; return its path.

    Raises:
        DataError: a file already there fails its checksum (it is kept), or no URL gave
            a file with the right checksum (offline, every mirror failing); the message
            names the expected path, ``prepare_command`` and the source URL.
    """
    target = dest_dir / remote.filename
    with lock_for(target):
        if target.exists():
            verify(target, remote)
            return target
        part = target.with_name(target.name + ".part")
        failures: list[str] = []
        for url in remote.urls:
            bar = _progress_bar(remote.filename) if progress else None
            try:
                _download_once(url, part, timeout, None if bar is None else bar)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                continue  # keep the .part: the next mirror resumes it
            finally:
                if bar is not None:
                    bar.close()
            problem = _mismatch(part, remote)
            if problem is not None:  # our own partial bytes: safe to discard
                failures.append(f"{url}: {problem.replace(str(part), 'download')}")
                part.unlink()
                continue
            os.replace(part, target)
            return target
        raise DataError(
            f"cannot download {target}: run `{prepare_command}` when online (source {remote.source}) "
            f"or place the file there by hand; tried: {'; '.join(failures) or 'no URL'}"
        )


class _progress_bar:
    """A tqdm bar fed with (bytes done, total bytes)."""

    def __init__(self, name: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(desc=name, unit="B", unit_scale=True, leave=False)

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


#: default cap on the bytes one archive may extract to (a zip bomb is refused before writing)
MAX_EXTRACT_BYTES = 8 << 30


def _plan_zip(archive: Path, zf: zipfile.ZipFile, dest: Path, fence: Path) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """The regular files to extract as (member, path parts under ``dest``); refuses unsafe members."""
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    dest_resolved = dest.resolve()
    for info in zf.infolist():
        name = info.filename
        pure = PurePosixPath(name.replace("\\", "/"))
        mode = info.external_attr >> 16
        if pure.is_absolute() or ".." in pure.parts or (name[1:2] == ":"):
            raise DataError(f"{archive}: member {name!r} would escape {fence}; refusing to extract it")
        if stat.S_ISLNK(mode):
            raise DataError(f"{archive}: member {name!r} is a symbolic link; refusing to extract it")
        target = (dest_resolved / Path(*pure.parts)).resolve() if pure.parts else dest_resolved
        if target != fence and fence not in target.parents:
            raise DataError(f"{archive}: member {name!r} would escape {fence}; refusing to extract it")
        if not info.is_dir() and pure.parts:
            plan.append((info, pure.parts))
    files = [parts for _, parts in plan]
    folders = {parts[:i] for parts in files for i in range(1, len(parts))}
    folders |= {PurePosixPath(i.filename).parts for i in zf.infolist() if i.is_dir()}
    seen: set[tuple[str, ...]] = set()
    for parts in files:
        if parts in folders or parts in seen:
            what = "both a file and a folder" if parts in folders else "listed twice"
            raise DataError(
                f"{archive}: member {'/'.join(parts)!r} is {what}; refusing to extract the archive "
                f"(nothing was written): delete it and prepare again"
            )
        seen.add(parts)
        target = dest.joinpath(*parts)
        if target.is_dir():
            raise DataError(f"{archive}: member {'/'.join(parts)!r} would replace the folder {target}; move that folder away")
        for i in range(1, len(parts)):
            folder = dest.joinpath(*parts[:i])
            if folder.exists() and not folder.is_dir():
                raise DataError(f"{archive}: member {'/'.join(parts)!r} needs a folder where the file {folder} is; move it away")
    return plan


def _clean_stale_staging(dest: Path) -> None:
    """Remove staging folders of extractions into ``dest`` whose process was killed."""
    pattern = re.compile(rf"^\.{re.escape(dest.name)}\.extract-(\d+)-")
    for entry in dest.parent.iterdir():
        m = pattern.match(entry.name)
        if m and entry.is_dir() and not pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def safe_extract_zip(archive: Path, dest: Path, *, root: Path | None = None, max_bytes: int = MAX_EXTRACT_BYTES) -> list[Path]:
    """Extract the regular files of ``archive`` into ``dest``; return their paths.

    No member may escape ``root`` (default ``dest``): absolute names, ``..`` parts and
    symbolic links are refused, as is a member that is both a file and a folder, and an
    archive that would extract to more than ``max_bytes`` (or more than the free space), all
    before anything is written. Files are extracted into a staging folder beside ``dest``
    and only then moved into place, so an error leaves no partial tree.
    """
    fence = (root or dest).resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive} is not a readable zip archive ({exc}); delete it and prepare again") from exc
    out: list[Path] = []
    with zf:
        plan = _plan_zip(archive, zf, dest, fence)
        declared = sum(info.file_size for info, _ in plan)
        if declared > max_bytes:
            raise DataError(
                f"{archive} would extract to {declared:,} bytes, more than the limit of {max_bytes:,} "
                f"(a corrupt or malicious archive); delete it and download it again"
            )
        make_dirs(dest.parent)
        free = shutil.disk_usage(dest.parent).free
        if declared > free:
            raise DataError(f"{archive} needs {declared:,} bytes but {dest.parent} has {free:,} free; free space and prepare again")
        _clean_stale_staging(dest)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-{os.getpid()}-", dir=dest.parent))
        try:
            written = 0
            for info, parts in plan:
                tmp = staging.joinpath(*parts)
                tmp.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src, tmp.open("wb") as dst:
                        size = 0
                        for block in iter(lambda: src.read(_CHUNK), b""):
                            size += len(block)
                            written += len(block)
                            if size > info.file_size or written > max_bytes:
                                raise DataError(
                                    f"{archive}: member {info.filename!r} inflates beyond its declared size or the "
                                    f"limit of {max_bytes:,} bytes; delete the archive and download it again"
                                )
                            dst.write(block)
                except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                    raise DataError(f"{archive}: cannot extract {info.filename!r} ({exc}); delete it and prepare again") from exc
            for info, parts in plan:  # every member extracted: move them into place
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging.joinpath(*parts), target)
                out.append(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out
