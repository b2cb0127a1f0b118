"""Evaluation: every metric under every protocol, per predicted frame, on one pass of data.

The baselines' per-clip scores can be reused from a checked cache (:class:`ScoreCache`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from ..components import BoundMetric
from ..errors import PluginError
from ..records import MetricResult
from .batches import eval_batches
from .cache import CheckedStore

__all__ = ["Predictor", "EvalResult", "ScoreCache", "evaluate", "check_prediction"]

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


@dataclass(frozen=True)
class ScoreCache:
    """Per-clip scores of predictors that depend on the test set alone (the baselines).

    ``identity`` names the test set (data checksum, dataset and its config, clip count,
    batch size, device, ...); ``names`` the predictors whose scores may be reused.
    """

    store: CheckedStore
    identity: Mapping[str, Any]
    names: frozenset[str]

    def key(self, predictor: str, entries: Sequence[str]) -> dict[str, Any]:
        return {"kind": "predictor-scores/1", **self.identity, "predictor": predictor, "metrics": sorted(entries)}


def _entry(m: BoundMetric) -> str:
    return f"{m.protocol}/{m.name}/{m.metric.version}"


def _batch_sums(values: Tensor, sizes: Sequence[int]) -> Tensor:
    """Per-step sums of ``[N, S]`` per-clip values, added batch by batch as they were scored."""
    acc: Tensor | None = None
    start = 0
    for b in sizes:
        part = values[start : start + b].sum(0)
        acc = part if acc is None else acc + part
        start += b
    return acc if acc is not None else values.new_zeros(values.shape[1:])


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
    cache: ScoreCache | None = None,
) -> dict[str, EvalResult]:
    """Score each predictor on the first ``limit`` clips of ``split``.

    Per-frame values ``[B, S]`` are summed per horizon step; the mean at step ``s`` is over
    clips and the overall mean over all frames. A NaN prediction is counted and propagates
    into the means (it is never averaged away). Each metric scores all predictions of a
    batch in one call (:meth:`vpbench.Metric.per_frame_many`), so what depends on the
    target alone is computed once. With ``cache``, the predictors it names are served
    from their stored per-clip scores when every metric has a version and the stored
    file checks out; otherwise they are scored and their scores stored.
    """
    entries = [_entry(m) for m in metrics]
    cacheable = cache is not None and all(m.metric.version for m in metrics) and len(set(entries)) == len(entries)
    n_all = len(split)  # type: ignore[arg-type]
    n = min(n_all, limit) if limit is not None else n_all
    served: dict[str, dict[str, np.ndarray]] = {}
    if cache is not None and cacheable:
        for pname in predictors:
            if pname in cache.names:
                got = cache.store.load(cache.key(pname, entries))
                if got is not None and all(e in got and got[e].shape == (n, horizon) for e in entries) and got.get(
                    "nan_frames", np.empty(0)
                ).shape == (n,):
                    served[pname] = got
    running = [p for p in predictors if p not in served]
    per_clip: dict[str, dict[str, list[Tensor]]] = {p: {e: [] for e in entries} for p in running}
    nan_clips: dict[str, list[Tensor]] = {p: [] for p in running}
    sizes: list[int] = []
    bar = tqdm(total=n, desc=desc, unit="clip", disable=not progress, leave=False)
    for _, clip in eval_batches(split, batch_size=batch_size, limit=limit):
        clip = clip.to(device)
        ctx, true = clip[:, :context], clip[:, context : context + horizon]
        preds: list[Tensor] = []
        for pname in running:
            pred = predictors[pname](ctx, horizon)
            check_prediction(pred, ctx, horizon, pname)
            pred = pred.float()
            nan_clips[pname].append(torch.isnan(pred).flatten(2).any(dim=2).sum(1).cpu())
            preds.append(pred)
        if preds:
            for m, e in zip(metrics, entries):
                for pname, scored in zip(running, m.metric.per_frame_many(preds, true)):
                    per_clip[pname][e].append(scored.double().cpu())  # [B, S]
        sizes.append(clip.shape[0])
        bar.update(clip.shape[0])
    bar.close()
    total = sum(sizes)
    values: dict[str, dict[str, Tensor]] = {}
    nan_frames: dict[str, int] = {}
    for pname in predictors:
        if pname in served:
            got = served[pname]
            values[pname] = {e: torch.from_numpy(got[e]) for e in entries}
            nan_frames[pname] = int(got["nan_frames"].sum())
            continue
        empty = torch.zeros(0, horizon, dtype=torch.float64)
        values[pname] = {e: torch.cat(v) if v else empty for e, v in per_clip[pname].items()}
        nan = torch.cat(nan_clips[pname]) if nan_clips[pname] else torch.zeros(0, dtype=torch.int64)
        nan_frames[pname] = int(nan.sum())
        if cache is not None and cacheable and pname in cache.names:
            arrays = {e: v.numpy() for e, v in values[pname].items()}
            cache.store.save(cache.key(pname, entries), {**arrays, "nan_frames": nan.numpy()})
    results = {p: EvalResult() for p in predictors}
    for pname in predictors:
        res = results[pname]
        res.sequences = total
        res.nan_frames = nan_frames[pname]
        for m, e in zip(metrics, entries):
            per_frame = (_batch_sums(values[pname][e], sizes) / max(total, 1)).tolist()
            res.metrics.setdefault(m.protocol, {})[m.name] = MetricResult(
                mean=float(sum(per_frame) / len(per_frame)) if per_frame else float("nan"),
                per_frame=per_frame,
                higher_is_better=m.higher_is_better,
            )
    return results
