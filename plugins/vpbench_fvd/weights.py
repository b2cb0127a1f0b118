"""The I3D feature network of the FVD: found locally, its SHA-256 checked before it is loaded.

The network is StyleGAN-V's TorchScript port of the tf.hub I3D (Kinetics-400) that the
original FVD used: ``i3d_torchscript.pt``, 51,235,320 bytes, SHA-256 :data:`I3D_SHA256`,
published by StyleGAN-V's authors at :data:`I3D_SOURCE`. vpbench never downloads it: the
user names it with ``$VPBENCH_FVD_WEIGHTS`` or the metric's ``weights`` option.

Loading TorchScript runs code from the file (``__setstate__`` methods run while it loads), so
the file is read once into memory, hashed, and only those verified bytes are handed to
``torch.jit.load``: nothing is loaded from a file whose hash is not accepted, and nothing can
swap the file between the check and the load.

The accepted hashes are :data:`I3D_SHA256` alone. Tests of the pipeline with a small stand-in
network register its hash for the duration of a ``with accepting(digest):`` block; no config
key, environment variable or command reaches that, so a user's run accepts the real file only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vpbench.errors import CheckpointError

__all__ = [
    "WEIGHTS_ENV",
    "I3D_FILE",
    "I3D_SHA256",
    "I3D_BYTES",
    "I3D_SOURCE",
    "accepted_hashes",
    "accepting",
    "find_weights",
    "load_verified",
    "read_verified",
]

WEIGHTS_ENV = "VPBENCH_FVD_WEIGHTS"
I3D_FILE = "i3d_torchscript.pt"
I3D_SHA256 = "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2"
I3D_BYTES = 51_235_320
#: where StyleGAN-V's authors publish the file (their src/metrics/frechet_video_distance.py)
I3D_SOURCE = "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt"

_SHIPPED = frozenset({I3D_SHA256})
_extra: dict[str, int] = {}  # digest -> how many open ``accepting`` blocks registered it
_extra_lock = threading.Lock()
#: a file this much larger than the real one is refused before it is read into memory
_MAX_BYTES = 4 * I3D_BYTES
_HEX64 = re.compile(r"[0-9a-f]{64}")


def accepted_hashes() -> frozenset[str]:
    """The SHA-256 digests a feature-network file may have: the real I3D's, plus test ones."""
    with _extra_lock:
        return _SHIPPED | frozenset(_extra)


@contextlib.contextmanager
def accepting(sha256: str) -> Iterator[None]:
    """Accept one more digest inside the block (tests with a stand-in network only).

    Explicit by design: the digest is the caller's, computed from a file the caller made, and
    it is forgotten when the block ends.
    """
    digest = sha256.lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    with _extra_lock:
        _extra[digest] = _extra.get(digest, 0) + 1
    try:
        yield
    finally:
        with _extra_lock:
            _extra[digest] -= 1
            if not _extra[digest]:
                del _extra[digest]


def _how_to_get() -> str:
    return (
        f"FVD needs StyleGAN-V's I3D {I3D_FILE} ({I3D_BYTES:,} bytes, SHA-256 {I3D_SHA256}), "
        f"published at {I3D_SOURCE}: download it yourself and set {WEIGHTS_ENV} to its path"
    )


def find_weights(weights: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """``(path, "")`` of the file named by ``weights``, else ``$VPBENCH_FVD_WEIGHTS``; or ``(None, reason)``.

    Only the file's existence is checked here (cheap, for ``available()``); the hash is checked
    by :func:`load_verified` before anything is loaded.
    """
    explicit = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or None
    if explicit is None:
        return None, f"no I3D network for FVD: {_how_to_get()}"
    path = Path(explicit).expanduser()
    if not path.is_file():
        return None, f"FVD I3D file {str(path)!r} (from {WEIGHTS_ENV} or the weights option) does not exist; {_how_to_get()}"
    return path, ""


def read_verified(path: Path) -> bytes:
    """The file's bytes, if their SHA-256 is accepted; else a one-line :class:`CheckpointError`."""
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise CheckpointError(
                f"FVD I3D file {str(path)!r} has {size:,} bytes, not the {I3D_BYTES:,} of {I3D_FILE}; {_how_to_get()}"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read FVD I3D file {str(path)!r}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest not in accepted_hashes():
        size_note = "" if len(data) == I3D_BYTES else f", {len(data):,} bytes"
        raise CheckpointError(
            f"FVD I3D file {str(path)!r} has SHA-256 {digest}{size_note}, not the expected {I3D_SHA256} "
            f"({I3D_BYTES:,} bytes); it was not loaded. Get the original {I3D_FILE} from {I3D_SOURCE}"
        )
    return data


def load_verified(path: Path) -> tuple[Any, str]:
    """``(network, sha256)``: the TorchScript module made from the verified bytes, in eval mode."""
    data = read_verified(path)
    import torch

    try:
        net = torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:  # noqa: BLE001 - an accepted file that does not load is reported, not raised raw
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"FVD I3D file {str(path)!r} passed its hash check but does not load: {first}") from None
    return net.eval(), hashlib.sha256(data).hexdigest()
