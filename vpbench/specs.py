"""Registration specs: what a plugin hands to ``register``.

A spec is small, frozen and cheap: it carries the metadata that ``vpbench plugins`` shows
and a ``"module:attribute"`` target that is imported only when the component is used, so
listing plugins never imports torch-heavy model code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import PluginError

__all__ = ["ModelSpec", "DatasetSpec", "MetricSpec", "load_target"]


def load_target(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise PluginError(f"bad plugin target {target!r}: expected 'package.module:Attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {module_name!r} for {target!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise PluginError(f"{module_name!r} has no attribute {attr!r} (plugin target {target!r})") from exc


@dataclass(frozen=True)
class ModelSpec:
    """A video-prediction model offered by a plugin.

    Attributes:
        name: the name users type (``--model NAME``).
        target: ``"module:Class"`` of a :class:`vpbench.interfaces.VideoModel` subclass.
        description: one line for ``vpbench plugins``.
        paper: citation of the method, empty for trivial baselines.
        tiny: config overrides giving a tiny variant, used by the registry-driven tests
            and smoke runs (timm's tiny variants).
        trainable: whether the model has parameters to train (copy-last-frame has not).
    """

    name: str
    target: str
    description: str
    paper: str = ""
    tiny: Mapping[str, Any] = field(default_factory=dict)
    trainable: bool = True

    def load(self) -> Any:
        return load_target(self.target)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset offered by a plugin.

    The frame shape and lengths are repeated here so that they can be listed without
    importing the dataset module.
    """

    name: str
    target: str
    description: str
    frame_shape: tuple[int, int, int]
    context: int
    horizon: int
    source: str = ""

    def load(self) -> Any:
        return load_target(self.target)


@dataclass(frozen=True)
class MetricSpec:
    """A per-frame quality metric offered by a plugin.

    Attributes:
        higher_is_better: the metric's direction; drives leaderboard arrows, checkpoint
            selection and Ray Tune's ``mode``.
        protocols: the metric protocols it implements (``openstl``, ``standard``).

    How leaderboards (markdown, CSV, LaTeX, HTML) present it; every field has a default, so a
    metric that declares none of them still shows (upper-cased name, ``.4g``, after the
    ordered ones, alphabetically):

        display_name: the column heading (default: the name upper-cased).
        unit: shown after the heading, e.g. ``"dB"`` -> ``PSNR (dB)`` (default: none).
        number_format: a Python format spec for one value, e.g. ``".2f"``, ``".3e"``
            (default ``".4g"``). CSV keeps full precision.
        column_order: columns sort by it, then by name (default 1000: after the first-party
            metrics, which use 10-50).
        auto_select_rank: with ``train.select_metric=auto`` the available metric of lowest
            rank selects checkpoints (first-party: LPIPS 0, SSIM 1); ``None`` (default):
            never chosen automatically.

    level: ``"frame"`` (default) for a :class:`~vpbench.interfaces.Metric` (per clip and
    frame), ``"set"`` for a :class:`~vpbench.interfaces.SetMetric` (one value per test set).
    """

    name: str
    target: str
    description: str
    higher_is_better: bool
    protocols: tuple[str, ...] = ("openstl", "standard")
    display_name: str = ""
    unit: str = ""
    number_format: str = ".4g"
    column_order: int = 1000
    auto_select_rank: int | None = None
    level: Literal["frame", "set"] = "frame"

    def __post_init__(self) -> None:
        try:
            shown = format(1.5, self.number_format)
        except (ValueError, TypeError) as exc:
            raise PluginError(
                f"metric {self.name!r}: number_format {self.number_format!r} is not a format spec for a float "
                f"({exc}); use e.g. '.4f' or '.3g'"
            ) from None
        if not shown or len(self.display_name) > 40 or len(self.unit) > 20:
            raise PluginError(
                f"metric {self.name!r}: display_name (max 40 characters) or unit (max 20) too long, or an empty "
                "number_format result; shorten them"
            )

    @property
    def heading(self) -> str:
        """The column heading: the display name (or upper-cased name), then the unit."""
        name = self.display_name or self.name.upper()
        return f"{name} ({self.unit})" if self.unit else name

    @property
    def mode(self) -> str:
        """Ray Tune's mode for this metric."""
        return "max" if self.higher_is_better else "min"

    def load(self) -> Any:
        return load_target(self.target)
