"""Export a dataset split to ``.npz``: the clips (and their ids) that ``vpbench score`` expects
predictions for, so a model outside vpbench can be scored without vpbench's Python API.

The file holds ``clips`` ``[N, T, C, H, W]`` (T = context + horizon frames, the first
``context`` are the model's input), ``ids`` ``[N]`` (row i is clip i of the split, in the
order ``vpbench score`` scores), and the scalars ``context`` and ``horizon``. ``clips`` is
uint8 (0-255) when that loses nothing (every value a multiple of 1/255), else float32 in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from ..errors import ConfigError
from ..fsutil import atomic_path
from ..interfaces import VideoDataset
from ..names import check_slug
from .guards import check_test_split

__all__ = ["export_split"]

Echo = Callable[[str], None]
Dtype = Literal["auto", "uint8", "float32"]


def _check_out(out: Path) -> None:
    if out.suffix != ".npz":
        raise ConfigError(f"--out {out} must name a .npz file, e.g. --out glyphs-test.npz")
    check_slug("--out file name", out.stem, "choose a plain file name, e.g. --out glyphs-test.npz")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name ending in .npz")


def export_split(
    dataset: VideoDataset, split: Literal["test", "val"], out: Path, *, limit: int | None = None,
    dtype: Dtype = "auto", progress: bool = True,
) -> tuple[int, str]:
    """Write the first ``limit`` clips (all when None) of ``split`` to ``out``; return (clips, dtype)."""
    _check_out(out)
    if split == "test":
        check_test_split(dataset)
    clips = dataset.split(split)
    n = len(clips)  # type: ignore[arg-type]
    if limit is not None:
        n = min(n, limit)
    if n == 0:
        raise ConfigError(f"the {split} split of {dataset.name} is empty; nothing to export")
    frames = dataset.context + dataset.horizon
    shape = (n, frames, *dataset.frame_shape.as_tuple())
    floats = np.empty(shape, dtype=np.float32)
    for i in tqdm(range(n), desc=f"export {split}", unit="clip", disable=not progress):
        clip = np.asarray(clips[i], dtype=np.float32)
        if clip.shape != shape[1:]:
            raise ConfigError(f"clip {i} of {dataset.name}'s {split} split has shape {list(clip.shape)}, not {list(shape[1:])}")
        floats[i] = clip
    as_uint8 = np.rint(floats * 255.0)
    lossless = bool(np.array_equal(as_uint8 / np.float32(255.0), floats))
    if dtype == "uint8" or (dtype == "auto" and lossless):
        data: np.ndarray = as_uint8.clip(0, 255).astype(np.uint8)
    else:
        data = floats
    del as_uint8
    with atomic_path(out) as tmp:
        with tmp.open("wb") as fh:
            np.savez(
                fh, clips=data, ids=np.arange(n, dtype=np.int64),
                context=np.int64(dataset.context), horizon=np.int64(dataset.horizon),
            )
    return n, str(data.dtype)
