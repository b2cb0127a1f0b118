"""Figures per test set: the fixed test clips with ground truth and every model's prediction in
rows (as in the paper's Figures 2-3), and per-horizon PSNR/SSIM curves for all models."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..fsutil import atomic_path
from ..visualize import plot_per_frame, strip_image
from .entries import Entry
from .load import TestSet
from .measured import metric_header, protocols_of

__all__ = ["fixed_sequence_image", "save_image", "horizon_curves", "save_per_horizon"]

_PAD = 4
_CAPTION = 16


def _load(path: Path) -> dict[str, np.ndarray] | str:
    """The arrays, or why they could not be read (a damaged file is never fatal)."""
    if not path.is_file():
        return "has no fixed_sequences.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        return f"has an unreadable fixed_sequences.npz ({type(exc).__name__})"
    if "clips" not in arrays or "ids" not in arrays:
        return "has a fixed_sequences.npz without clips/ids"
    return arrays


def fixed_sequence_image(test_set: TestSet, entries: Sequence[Entry]) -> tuple[Image.Image | None, list[str]]:
    """Stack, per fixed clip: input row, ground-truth row, one row per entry's prediction.

    Returns the image (None when no record has fixed sequences) and notes on left-out rows.
    """
    T, S = test_set.context, test_set.horizon
    notes: list[str] = []
    cache: dict[Path, dict[str, np.ndarray] | str] = {}
    ref: dict[str, np.ndarray] | None = None
    rows: list[tuple[str, np.ndarray]] = []  # label, uint8 [N, S, C, H, W]
    for e in entries:
        path = e.source.fixed_sequences
        if path not in cache:
            cache[path] = _load(path)
        arrays = cache[path]
        if isinstance(arrays, str):
            notes.append(f"{e.label}: run {e.run_id} {arrays}")
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
        rows.append((e.label, pred))
    if ref is None:
        return None, notes
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


def horizon_curves(entries: Sequence[Entry], metrics: Sequence[str] = ("psnr", "ssim")) -> dict[str, dict[str, list[float]]]:
    """``curves[panel][row label] = per-frame means`` in the first protocol (openstl when present)."""
    protocols = protocols_of(entries)
    curves: dict[str, dict[str, list[float]]] = {}
    if not protocols:
        return curves
    protocol = protocols[0]
    for name in metrics:
        for e in entries:
            res = e.metrics.get(protocol, {}).get(name)
            if res is not None:
                arrow = "↑" if res.higher_is_better else "↓"
                curves.setdefault(f"{metric_header(name)}{arrow} ({protocol})", {})[e.label] = res.per_frame
    return curves


def save_per_horizon(path: Path, test_set: TestSet, curves: dict[str, dict[str, list[float]]]) -> None:
    """One panel per metric against predicted-frame index, one line per row of the table."""
    plot_per_frame(path, curves, f"{test_set.dataset}: per predicted frame, {test_set.sequences:,} test clips")
