"""Where KTH clips start: the backward scan of the published tables and ``00sequences.txt``.

The OpenSTL / PredRNN rule, per video (the published code concatenates all videos, but a
window never spans two folders, so the scan restarts at each video's last frame):

    i = last frame
    while a window of L frames ends at i:
        if the frames i-L+1 .. i carry consecutive numbers (numbers[i] - numbers[i-L+1] = L-1):
            accept the window [i-L+1, i]
            i -= L   for boxing, handclapping, handwaving, walking (non-overlapping, anchored at the end)
            i -= 3   for jogging, running (stride 3)
        else:
            i -= 1

With ``00sequences.txt`` the same scan runs inside each listed sub-sequence instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from vpbench.errors import DataError

#: jump after an accepted window, for clips of length L: L (category 1) or 3 (category 2)
DENSE_ACTIONS = ("jogging", "running")
DENSE_STRIDE = 3

_ENTRY = re.compile(r"^\s*(person\d\d_[a-z]+_d\d)\s+frames\s+(.+?)\s*$")
_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")


def stride_after_accept(action: str, length: int) -> int:
    return DENSE_STRIDE if action in DENSE_ACTIONS else length


def scan(numbers: Sequence[int], length: int, stride: int) -> list[int]:
    """Start offsets (into ``numbers``) of the accepted windows, in chronological order."""
    starts: list[int] = []
    i = len(numbers) - 1
    while i >= length - 1:
        if numbers[i] - numbers[i - length + 1] == length - 1:
            starts.append(i - length + 1)
            i -= stride
        else:
            i -= 1
    return starts[::-1]


def windows(
    numbers: Sequence[int], length: int, action: str, segments: Sequence[tuple[int, int]] | None = None
) -> list[int]:
    """Start offsets of the clips of one video, optionally within ``segments`` (frame numbers, inclusive)."""
    stride = stride_after_accept(action, length)
    if segments is None:
        return scan(numbers, length, stride)
    out: list[int] = []
    for first, last in segments:
        idx = [k for k, n in enumerate(numbers) if first <= n <= last]
        if idx:
            out.extend(idx[0] + s for s in scan([numbers[k] for k in idx], length, stride))
    return sorted(out)


def read_sequences(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Parse ``00sequences.txt``: ``{"person01_boxing_d1": [(1, 95), (96, 185), ...]}``."""
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    out: dict[str, list[tuple[int, int]]] = {}
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if m:
            out[m.group(1)] = [(int(a), int(b)) for a, b in _RANGE.findall(m.group(2))]
    if not out:
        raise DataError(f"{path} lists no 'personNN_action_dK frames a-b, ...' entries; is it 00sequences.txt?")
    return out
