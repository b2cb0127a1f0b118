"""Figures per test set: the fixed test clips with ground truth and every model's prediction in
rows (as in the paper's Figures 2-3; one seed per row), per-horizon SSIM/LPIPS curves for all
models, and validation quality against training compute (``train.history``), seeds shaded."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..fsutil import atomic_path
from ..visualize import plot_compute, plot_per_frame, strip_image
from .entries import Entry
from .load import TestSet
from .measured import protocols_of
from .npzread import Check, read_members
from .presentation import Styles, ordered, style_of

__all__ = [
    "FixedClips",
    "fixed_clips",
    "MAX_CLIPS",
    "fixed_sequence_image",
    "save_image",
    "strip_label",
    "horizon_curves",
    "save_per_horizon",
    "PER_FRAME_PANELS",
    "ComputeSeries",
    "ComputeCurves",
    "compute_curves",
    "save_compute_curves",
]

#: the metrics of the per-predicted-frame picture, when the records have them
PER_FRAME_PANELS = ("ssim", "lpips")
#: the validation metrics drawn against training compute, when the histories have them
COMPUTE_PANELS = ("lpips", "mse")
#: keys of a ``train.history`` entry that are not metric values
_HISTORY_KEYS = frozenset({"step", "sequences", "macs", "stage"})

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
    rows = [(strip_label(e), pred) for e, pred in fixed.rows]
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


def strip_label(e: Entry) -> str:
    """A row's name in the pictures of fixed clips; a row of several seeds shows its first seed's
    predictions and says which."""
    return f"{e.label} (seed {e.source.record.seed})" if e.n > 1 else e.label


def save_image(path: Path, image: Image.Image) -> None:
    """PNG without timestamps, so equal pixels give equal bytes."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def horizon_curves(entries: Sequence[Entry], styles: Styles, panels: int | None = 2) -> dict[str, dict[str, list[float]]]:
    """``curves[panel][row label] = per-frame means`` in the first protocol (openstl when present),
    one panel per metric: with ``panels``, that many, :data:`PER_FRAME_PANELS` (SSIM and LPIPS)
    first, then others in column order; ``None``: every metric in column order."""
    protocols = protocols_of(entries)
    curves: dict[str, dict[str, list[float]]] = {}
    if not protocols:
        return curves
    protocol = protocols[0]
    names = ordered(  # a set-level metric (FVD) has one value per test set, no curve
        {n for e in entries for n, r in e.metrics.get(protocol, {}).items() if r.level != "set" and r.per_frame}, styles
    )
    if panels is not None:
        names = [n for n in PER_FRAME_PANELS if n in names] + [n for n in names if n not in PER_FRAME_PANELS]
        names = ordered(names[:panels], styles)
    for name in names:
        for e in entries:
            res = e.metrics.get(protocol, {}).get(name)
            if res is not None and res.per_frame:
                arrow = "↑" if res.higher_is_better else "↓"
                curves.setdefault(f"{style_of(name, styles).heading}{arrow} ({protocol})", {})[e.label] = res.per_frame
    return curves


def save_per_horizon(path: Path, test_set: TestSet, curves: dict[str, dict[str, list[float]]]) -> None:
    """One panel per metric against predicted-frame index, one line per row of the table."""
    plot_per_frame(path, curves, f"{test_set.dataset}: per predicted frame, {test_set.sequences:,} test clips")


@dataclass(frozen=True)
class ComputeSeries:
    """One row's validation curve: at each x (training MACs or sequences), the mean over its
    seeds and the lowest and highest seed (equal for one seed)."""

    label: str
    x: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    seeds: int


@dataclass(frozen=True)
class ComputeCurves:
    """Validation quality against training compute: one panel per metric, one series per row."""

    #: ``"macs"`` (training multiply-accumulates) or ``"sequences"`` (training clips seen)
    axis: str
    #: (metric name, heading with arrow, series per row in table order)
    panels: list[tuple[str, str, list[ComputeSeries]]]

    @property
    def axis_label(self) -> str:
        return "training MACs (forward + backward)" if self.axis == "macs" else "training sequences seen"


def _history_value(point: dict[str, object], metric: str) -> float | None:
    for key in (metric, f"val_{metric}"):
        v = point.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
            return float(v)
    return None


def _history_points(history: Sequence[dict[str, object]], axis: str, metric: str) -> list[tuple[float, float]]:
    """(x, value) of one run's validation passes, x increasing (a repeated x keeps its last value)."""
    points: dict[float, float] = {}
    for p in history:
        x, v = p.get(axis), _history_value(p, metric)
        if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 and v is not None:
            points[float(x)] = v
    return sorted(points.items())


def _band(label: str, runs: list[list[tuple[float, float]]]) -> ComputeSeries | None:
    """Mean, min and max over the runs at every x of any of them, each run linearly
    interpolated inside its own range (never extrapolated)."""
    runs = [r for r in runs if r]
    if not runs:
        return None
    xs = sorted({x for r in runs for x, _ in r})
    mean, low, high, kept = [], [], [], []
    for x in xs:
        vals = [float(np.interp(x, [p[0] for p in r], [p[1] for p in r])) for r in runs if r[0][0] <= x <= r[-1][0]]
        if len(vals) < len(runs) and len(runs) > 1:
            continue  # a band needs every seed
        kept.append(x)
        mean.append(sum(vals) / len(vals))
        low.append(min(vals))
        high.append(max(vals))
    return ComputeSeries(label, kept, mean, low, high, len(runs)) if kept else None


def compute_curves(entries: Sequence[Entry], styles: Styles) -> ComputeCurves | None:
    """The validation history of every trained row against its training compute: MACs when
    the histories carry them, else sequences seen; LPIPS and MSE panels when present (else the
    first two metrics the histories hold, in column order). None without two points."""
    runs = [(e, [m.record for m in (e.members or (e.source,))]) for e in entries if e.kind == "run"]
    histories = [p for _, recs in runs for r in recs for p in r.train.history]
    if not histories:
        return None
    macs = [p.get("macs") for p in histories]
    axis = "macs" if any(isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0 for m in macs) else "sequences"
    found = {k.removeprefix("val_") for p in histories for k, v in p.items() if k not in _HISTORY_KEYS and isinstance(v, (int, float))}
    names = [n for n in COMPUTE_PANELS if n in found] or ordered(found, styles)[:2]
    panels = []
    for name in names:
        series = []
        for e, recs in runs:
            s = _band(e.label, [_history_points(r.train.history, axis, name) for r in recs])
            if s is not None:
                series.append(s)
        if series and sum(len(s.x) for s in series) >= 2:
            higher = next((res.higher_is_better for e, _ in runs for p in e.metrics.values() if (res := p.get(name))), None)
            arrow = "" if higher is None else ("↑" if higher else "↓")
            panels.append((name, f"validation {style_of(name, styles).heading}{arrow}", series))
    return ComputeCurves(axis, panels) if panels else None


def save_compute_curves(path: Path, test_set: TestSet, curves: ComputeCurves) -> None:
    """One panel per metric: a line per row (mean over its seeds), its seeds' range shaded."""
    plot_compute(
        path,
        [(heading, [(s.label, s.x, s.mean, s.low, s.high) for s in series]) for _, heading, series in curves.panels],
        curves.axis_label,
        f"{test_set.dataset}: validation quality against training compute\n(line: mean over seeds; band: lowest to highest seed)",
    )
