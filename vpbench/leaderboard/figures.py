"""Figures per test set: the fixed test clips with ground truth and every model's prediction in
rows (as in the paper's Figures 2-3), and per-horizon PSNR/SSIM curves for all models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..fsutil import atomic_path
from ..visualize import plot_per_frame, strip_image
from .entries import Entry
from .load import TestSet
from .measured import protocols_of
from .npzread import Check, read_members
from .presentation import Styles, ordered, style_of

__all__ = ["FixedClips", "fixed_clips", "MAX_CLIPS", "fixed_sequence_image", "save_image", "horizon_curves", "save_per_horizon"]

_PAD = 4
_CAPTION = 16
#: the most fixed clips a picture or an animation shows
MAX_CLIPS = 16


@dataclass
class FixedClips:
    """The fixed test clips shared by a test set's rows and each row's predictions of them."""

    ids: list[int]
    #: uint8 [N, T + S, C, H, W]
    clips: np.ndarray
    #: (row, uint8 [N, S, C, H, W]) in table order
    rows: list[tuple[Entry, np.ndarray]]


def _checks(test_set: TestSet, preds: Sequence[str]) -> dict[str, Check]:
    frames, shape = test_set.context + test_set.horizon, tuple(test_set.frame_shape)

    def ids(s: tuple[int, ...], d: np.dtype) -> str | None:
        return None if len(s) == 1 and 0 < s[0] <= MAX_CLIPS else f"has shape {s}, not [N <= {MAX_CLIPS}]"

    def clips(s: tuple[int, ...], d: np.dtype) -> str | None:
        ok = len(s) == 5 and 0 < s[0] <= MAX_CLIPS and s[1] == frames and s[2:] == shape and d == np.uint8
        return None if ok else f"is {d} {s}, not uint8 [N, {frames}, {', '.join(map(str, shape))}]"

    def pred(s: tuple[int, ...], d: np.dtype) -> str | None:
        ok = len(s) == 5 and 0 < s[0] <= MAX_CLIPS and s[1:] == (test_set.horizon, *shape) and d == np.uint8
        return None if ok else f"is {d} {s}, not uint8 [N, {test_set.horizon}, {', '.join(map(str, shape))}]"

    return {"ids": ids, "clips": clips, **{p: pred for p in preds}}


def fixed_clips(test_set: TestSet, entries: Sequence[Entry]) -> tuple[FixedClips | None, list[str]]:
    """The fixed clips and every row's predictions of them (read with bounded memory, see
    :mod:`.npzread`), and notes on rows left out (no file, damaged, other clips)."""
    S = test_set.horizon
    notes: list[str] = []
    wanted: dict[Path, list[str]] = {}
    for e in entries:
        wanted.setdefault(e.source.fixed_sequences, []).append(e.prediction_key)
    cache: dict[Path, dict[str, np.ndarray] | str] = {}
    ref: dict[str, np.ndarray] | None = None
    rows: list[tuple[Entry, np.ndarray]] = []
    for e in entries:
        path = e.source.fixed_sequences
        if path not in cache:
            keys = sorted(set(wanted[path]))
            cache[path] = read_members(path, _checks(test_set, keys), optional=keys) if path.is_file() else "has no fixed_sequences.npz"
        arrays = cache[path]
        if isinstance(arrays, str):
            notes.append(f"{e.label}: run {e.run_id} {arrays}")
            continue
        if arrays["ids"].shape[0] != arrays["clips"].shape[0]:
            notes.append(f"{e.label}: run {e.run_id} saved {arrays['ids'].shape[0]} ids for {arrays['clips'].shape[0]} clips")
            continue
        if ref is None:
            ref = arrays
        elif not (np.array_equal(ref["ids"], arrays["ids"]) and np.array_equal(ref["clips"], arrays["clips"])):
            notes.append(f"{e.label}: run {e.run_id} saved different fixed clips; left out of the picture")
            continue
        pred = arrays.get(e.prediction_key)
        if pred is None or pred.shape[:2] != (ref["clips"].shape[0], S):
            notes.append(f"{e.label}: run {e.run_id} saved no usable `{e.prediction_key}`")
            continue
        rows.append((e, pred))
    if ref is None:
        return None, notes
    return FixedClips([int(i) for i in ref["ids"].tolist()], ref["clips"], rows), notes


def fixed_sequence_image(test_set: TestSet, entries: Sequence[Entry]) -> tuple[Image.Image | None, list[str]]:
    """Stack, per fixed clip: input row, ground-truth row, one row per entry's prediction.

    Returns the image (None when no record has fixed sequences) and notes on left-out rows.
    """
    T, S = test_set.context, test_set.horizon
    fixed, notes = fixed_clips(test_set, entries)
    if fixed is None:
        return None, notes
    ref = {"ids": np.array(fixed.ids), "clips": fixed.clips}
    rows = [(e.label, pred) for e, pred in fixed.rows]
    clips = ref["clips"].astype(np.float32) / 255.0
    label_width = 8 + 6 * max(len(label) for label in ["input", "truth", *(r[0] for r in rows)])
    strips = []
    for j, clip_id in enumerate(ref["ids"].tolist()):
        strip_rows = [("input", clips[j, :T]), ("truth", clips[j, T : T + S])]
        strip_rows += [(label, pred[j].astype(np.float32) / 255.0) for label, pred in rows]
        strips.append((int(clip_id), strip_image(strip_rows, label_width=label_width)))
    width = max(s.width for _, s in strips)
    height = sum(s.height + _CAPTION for _, s in strips) + _PAD
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    y = 0
    for clip_id, s in strips:
        draw.text((4, y + 2), f"test clip {clip_id} ({T} input frames, {S} predicted)", fill=(0, 0, 128), font=font)
        canvas.paste(s, (0, y + _CAPTION))
        y += s.height + _CAPTION
    return canvas, notes


def save_image(path: Path, image: Image.Image) -> None:
    """PNG without timestamps, so equal pixels give equal bytes."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def horizon_curves(entries: Sequence[Entry], styles: Styles, panels: int | None = 2) -> dict[str, dict[str, list[float]]]:
    """``curves[panel][row label] = per-frame means`` in the first protocol (openstl when present),
    one panel per metric in column order (the first ``panels``; PSNR and SSIM for first-party)."""
    protocols = protocols_of(entries)
    curves: dict[str, dict[str, list[float]]] = {}
    if not protocols:
        return curves
    protocol = protocols[0]
    names = ordered(  # a set-level metric (FVD) has one value per test set, no curve
        {n for e in entries for n, r in e.metrics.get(protocol, {}).items() if r.level != "set" and r.per_frame}, styles
    )
    for name in names[:panels]:
        for e in entries:
            res = e.metrics.get(protocol, {}).get(name)
            if res is not None and res.per_frame:
                arrow = "↑" if res.higher_is_better else "↓"
                curves.setdefault(f"{style_of(name, styles).heading}{arrow} ({protocol})", {})[e.label] = res.per_frame
    return curves


def save_per_horizon(path: Path, test_set: TestSet, curves: dict[str, dict[str, list[float]]]) -> None:
    """One panel per metric against predicted-frame index, one line per row of the table."""
    plot_per_frame(path, curves, f"{test_set.dataset}: per predicted frame, {test_set.sequences:,} test clips")
