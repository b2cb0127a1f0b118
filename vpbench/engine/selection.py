"""Which validation metric selects the best checkpoint (``train.select_metric``).

``auto`` (the default) is the available metric of lowest ``auto_select_rank`` in its
registration (:class:`vpbench.MetricSpec`); the first-party ranks are LPIPS 0, SSIM 1.
Measured on the 1,000 glyph test clips (issue 12): an all-black frame wins MSE (205.3 vs
copy-last's 308.2) and SSIM (0.769 vs 0.651) but loses LPIPS (0.551 vs 0.229), so
MSE-selection prefers predictions that fade to the background. SSIM is the fallback when
LPIPS has no weights; the run then flags a model that does not beat ``blank`` on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..components import BoundMetric, build_metrics
from ..errors import ConfigError
from ..interfaces import SetMetric
from ..plugins import Registry

__all__ = ["auto_candidates", "resolve_select_metric", "validation_metrics"]


def auto_candidates(registry: Registry) -> list[str]:
    """Metrics that ``auto`` may choose, in order of their ``auto_select_rank``: never a set-level
    one (FVD needs a whole set per validation pass; ``train.select_metric=NAME`` can still ask for it)."""
    ranked = [
        (r.spec.auto_select_rank, r.spec.name)
        for r in registry.metrics
        if r.spec.auto_select_rank is not None and r.spec.level != "set"
    ]
    return [name for _, name in sorted(ranked, key=lambda t: (t[0] or 0, t[1]))]


def resolve_select_metric(registry: Registry, name: str, echo: Callable[[str], None] | None = None) -> str:
    """The metric name ``name`` stands for: itself, or for ``auto`` the first available one."""
    if name != "auto":
        return name
    candidates = auto_candidates(registry)
    for candidate in candidates:
        bound, unavailable = build_metrics(registry, [candidate], ["openstl"])
        if bound:
            return candidate
        if echo is not None:
            echo(f"note: train.select_metric=auto skips {candidate}: {unavailable.get(candidate)}")
    tried = ", ".join(candidates) or "no installed metric declares an auto_select_rank"
    raise ConfigError(f"train.select_metric=auto found none usable ({tried}); set train.select_metric")


def validation_metrics(metrics: Sequence[BoundMetric], select: BoundMetric) -> list[BoundMetric]:
    """The run's metrics that every validation pass records beside ``select`` (the trainer's
    ``watch``): those under the selecting metric's protocol, ``select`` excluded, so that the
    validation history holds e.g. LPIPS and MSE whichever of them selects."""
    return [
        m for m in metrics
        if m.protocol == select.protocol and m.name != select.name and not isinstance(m.metric, SetMetric)  # FVD: test set only
    ]
