"""Which validation metric selects the best checkpoint (``train.select_metric``).

``auto`` (the default) is the first available of :data:`AUTO_SELECT`. Measured on the 1,000
glyph test clips (issue 12): an all-black frame wins MSE (205.3 vs copy-last's 308.2) and
SSIM (0.769 vs 0.651) but loses LPIPS (0.551 vs 0.229), so MSE-selection prefers predictions
that fade to the background. SSIM is the fallback when LPIPS has no weights; the run then
flags a model that does not beat ``blank`` on it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..components import build_metrics
from ..errors import ConfigError
from ..plugins import Registry

__all__ = ["AUTO_SELECT", "resolve_select_metric"]

AUTO_SELECT = ("lpips", "ssim")


def resolve_select_metric(registry: Registry, name: str, echo: Callable[[str], None] | None = None) -> str:
    """The metric name ``name`` stands for: itself, or for ``auto`` the first available one."""
    if name != "auto":
        return name
    for candidate in AUTO_SELECT:
        if candidate not in registry.metrics:
            continue
        bound, unavailable = build_metrics(registry, [candidate], ["openstl"])
        if bound:
            return candidate
        if echo is not None:
            echo(f"note: train.select_metric=auto skips {candidate}: {unavailable.get(candidate)}")
    raise ConfigError(f"train.select_metric=auto found none of {', '.join(AUTO_SELECT)}; set train.select_metric")
