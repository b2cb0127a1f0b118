"""Pictures people would rather look at than read: clip strips, per-frame curves and quality
against training compute."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .fsutil import atomic_path

__all__ = ["to_uint8", "strip_image", "save_strip", "plot_per_frame", "plot_compute"]


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float ``[..., C, H, W]`` in [0, 1] -> uint8 ``[..., H, W, 3]`` (grey replicated)."""
    x = np.nan_to_num(np.clip(frames, 0.0, 1.0)) * 255.0 + 0.5
    x = x.astype(np.uint8)
    x = np.moveaxis(x, -3, -1)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return np.asarray(x, dtype=np.uint8)


def strip_image(rows: Sequence[tuple[str, np.ndarray]], pad: int = 2, label_width: int = 64) -> Image.Image:
    """Rows of frames, each ``(label, float [T, C, H, W])``, laid out left to right."""
    h, w = rows[0][1].shape[-2:]
    cols = max(r[1].shape[0] for r in rows)
    width = label_width + cols * (w + pad) + pad
    height = len(rows) * (h + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for r, (label, frames) in enumerate(rows):
        y = pad + r * (h + pad)
        draw.text((4, y + h // 2 - 6), label, fill=(0, 0, 0), font=font)
        for c, frame in enumerate(to_uint8(frames)):
            canvas.paste(Image.fromarray(frame), (label_width + pad + c * (w + pad), y))
    return canvas


def save_strip(path: Path, rows: Sequence[tuple[str, np.ndarray]]) -> None:
    with atomic_path(path) as tmp:
        strip_image(rows).save(tmp, format="PNG")


def plot_per_frame(path: Path, curves: Mapping[str, Mapping[str, Sequence[float]]], title: str) -> None:
    """One panel per metric; ``curves[metric][series] = values per horizon step``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        for k, (series, values) in enumerate(curves[name].items()):
            # matplotlib's cycle has ten colours: past ten series, dashed lines keep them apart
            ax.plot(range(1, len(values) + 1), list(values), marker="o", markersize=3, label=series,
                    color=f"C{k % 10}", linestyle="-" if k < 10 else "--")
        ax.set_title(name)
        ax.set_xlabel("predicted frame")
        ax.grid(alpha=0.3)
    _save_figure(fig, axes, title, path)


def plot_compute(
    path: Path,
    panels: Sequence[tuple[str, Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float], Sequence[float]]]]],
    xlabel: str,
    title: str,
) -> None:
    """One panel per metric, log x; per series ``(label, x, mean, low, high)`` a line and,
    where ``low`` and ``high`` differ, the band between them shaded in the line's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 4.2 * len(panels)), 3.4), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels):
        for k, (label, x, mean, low, high) in enumerate(series):
            colour = f"C{k % 10}"
            ax.plot(list(x), list(mean), marker="o", markersize=3, label=label, color=colour,
                    linestyle="-" if k < 10 else "--")
            if any(a != b for a, b in zip(low, high)):
                ax.fill_between(list(x), list(low), list(high), color=colour, alpha=0.2, linewidth=0)
        _log_axis(ax)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    _save_figure(fig, axes, title, path)


def _log_axis(ax: Any) -> None:
    """A log x axis labelled at 1, 2 and 5 times each power of ten, in SI units (``300G``),
    minor ticks unlabelled: a range under one decade otherwise labels every minor tick in
    ``3×10^10`` form and the labels run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _si(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _si(value: float) -> str:
    for power, prefix in ((15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if abs(value) >= 10.0**power:
            return f"{value / 10.0**power:g}{prefix}"
    return f"{value:g}"


def layout_figure(fig: Any, axes: Any, title: str) -> Any:
    """Title, and the legend below the panels (outside them, one entry per line), so a long
    row label never covers a curve or runs off the figure; returns the legend."""
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=7, ncol=1, frameon=False)


def _save_figure(fig: Any, axes: Any, title: str, path: Path) -> None:
    """Legend, title and layout of a grid of panels; the PNG (cropped to what is drawn, legend
    included) written atomically."""
    import matplotlib.pyplot as plt

    layout_figure(fig, axes, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
