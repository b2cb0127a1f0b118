"""The "does not beat blank" check: a trained model must beat an all-background prediction.

On datasets whose background is zero (the digit datasets) a prediction that fades to black
scores well on MSE, and even on SSIM; a model that does not beat the ``blank`` baseline on
the metric that selected its checkpoint has learned the background, not the motion.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..records import MetricResult

__all__ = ["BLANK", "DEFAULT_COMPARE", "FLAG_BELOW_BLANK", "below_blank"]

#: name of the all-background baseline (``vpbench_baselines``)
BLANK = "blank"

#: baselines scored on the same test clips in every run unless asked otherwise
DEFAULT_COMPARE: tuple[str, ...] = (BLANK, "copy-last", "mean-context")
#: record flag set when the trained model does not beat ``blank`` on the selection metric
FLAG_BELOW_BLANK = "not-better-than-blank"


def below_blank(
    metrics: Mapping[str, Mapping[str, MetricResult]],
    baselines: Mapping[str, Mapping[str, Mapping[str, MetricResult]]],
    metric: str,
    protocol: str = "openstl",
) -> str | None:
    """A one-line warning when ``metrics`` do not beat the ``blank`` baseline on ``metric``
    (ties count as not beating it); ``None`` when they do or when either value is missing."""
    mine = metrics.get(protocol, {}).get(metric)
    blank = baselines.get(BLANK, {}).get(protocol, {}).get(metric)
    if mine is None or blank is None:
        return None
    better = mine.mean > blank.mean if mine.higher_is_better else mine.mean < blank.mean
    if better:
        return None
    return (
        f"the model does not beat the all-background '{BLANK}' baseline on the selection metric {metric} "
        f"({mine.mean:.4g} vs {blank.mean:.4g}): it predicts the background, not the motion"
    )
