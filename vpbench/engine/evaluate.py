"""Evaluation: every metric under every protocol, per predicted frame, on one pass of data."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from ..components import BoundMetric
from ..errors import PluginError
from ..records import MetricResult
from .batches import eval_batches

__all__ = ["Predictor", "EvalResult", "evaluate", "check_prediction"]

#: ``predict(context [B,T,C,H,W], horizon) -> [B,S,C,H,W]``
Predictor = Callable[[Tensor, int], Tensor]


@dataclass
class EvalResult:
    """Results of one predictor: protocol -> metric -> result."""

    metrics: dict[str, dict[str, MetricResult]] = field(default_factory=dict)
    sequences: int = 0
    nan_frames: int = 0


def check_prediction(pred: Tensor, context: Tensor, horizon: int, who: str) -> None:
    b, _, c, h, w = context.shape
    expected = (b, horizon, c, h, w)
    if tuple(pred.shape) != expected:
        raise PluginError(f"{who} returned a prediction of shape {tuple(pred.shape)}, expected {expected} [B, S, C, H, W]")


@torch.no_grad()
def evaluate(
    predictors: Mapping[str, Predictor],
    split: Dataset[Tensor],
    metrics: Sequence[BoundMetric],
    *,
    context: int,
    horizon: int,
    device: torch.device,
    batch_size: int,
    limit: int | None = None,
    progress: bool = True,
    desc: str = "test",
) -> dict[str, EvalResult]:
    """Score each predictor on the first ``limit`` clips of ``split``.

    Per-frame values ``[B, S]`` are summed per horizon step; the mean at step ``s`` is over
    clips and the overall mean over all frames. A NaN prediction is counted and propagates
    into the means (it is never averaged away).
    """
    sums: dict[str, dict[tuple[str, str], Tensor]] = {p: {} for p in predictors}
    results = {p: EvalResult() for p in predictors}
    total = 0
    n_all = len(split)  # type: ignore[arg-type]
    n = min(n_all, limit) if limit is not None else n_all
    bar = tqdm(total=n, desc=desc, unit="clip", disable=not progress, leave=False)
    for _, clip in eval_batches(split, batch_size=batch_size, limit=limit):
        clip = clip.to(device)
        ctx, true = clip[:, :context], clip[:, context : context + horizon]
        for pname, predict in predictors.items():
            pred = predict(ctx, horizon)
            check_prediction(pred, ctx, horizon, pname)
            pred = pred.float()
            results[pname].nan_frames += int(torch.isnan(pred).flatten(2).any(dim=2).sum())
            for m in metrics:
                values = m.metric.per_frame(pred, true).double().cpu()  # [B, S]
                key = (m.protocol, m.name)
                acc = sums[pname].get(key)
                sums[pname][key] = values.sum(0) if acc is None else acc + values.sum(0)
        total += clip.shape[0]
        bar.update(clip.shape[0])
    bar.close()
    for pname in predictors:
        res = results[pname]
        res.sequences = total
        for m in metrics:
            per_frame = (sums[pname][(m.protocol, m.name)] / max(total, 1)).tolist()
            res.metrics.setdefault(m.protocol, {})[m.name] = MetricResult(
                mean=float(sum(per_frame) / len(per_frame)) if per_frame else float("nan"),
                per_frame=per_frame,
                higher_is_better=m.higher_is_better,
            )
    return results
