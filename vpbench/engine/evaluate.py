"""Evaluation: every metric under every protocol, on one pass of data: per-frame metrics per
predicted frame, set-level metrics once per test set; a stochastic model on several draws.

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
from ..interfaces import Metric, SetMetric, SetValue
from ..records import MetricResult
from ..sampled import BEST, MEAN, sampled_key
from .batches import eval_batches
from .cache import CheckedStore
from .draws import Draws

__all__ = ["Predictor", "EvalResult", "ScoreCache", "evaluate", "check_prediction", "best_of"]

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


def _mean_curve(values: Tensor, sizes: Sequence[int], total: int) -> list[float]:
    """The mean at each horizon step of ``[N, S]`` per-clip values."""
    return (_batch_sums(values, sizes) / max(total, 1)).tolist()


def _frame_result(per_frame: list[float], higher_is_better: bool) -> MetricResult:
    return MetricResult(
        mean=float(sum(per_frame) / len(per_frame)) if per_frame else float("nan"),
        per_frame=per_frame,
        higher_is_better=higher_is_better,
    )


def _set_result(metric: SetMetric, state: Any, higher_is_better: bool) -> MetricResult:
    got = metric.compute(state)
    if not isinstance(got, SetValue):
        raise PluginError(f"set-level metric {metric.name!r}: compute must return a vpbench.SetValue; got {type(got).__name__}")
    return MetricResult(
        mean=float(got.value),
        per_frame=[],
        higher_is_better=higher_is_better,
        level="set",
        spread=None if got.spread is None else float(got.spread),
        n=int(got.n),
        info=dict(got.info),
    )


def best_of(values: Tensor, higher_is_better: bool) -> Tensor:
    """Per clip, the draw of ``[n, N, S]`` values whose mean over the horizon is best: ``[N, S]``.

    A draw with a NaN frame wins (NaN propagates into the means, never averaged away).
    """
    clip = values.mean(2)  # [n, N]
    pick = clip.argmax(0) if higher_is_better else clip.argmin(0)
    if bool(torch.isnan(clip).any()):
        nan = torch.isnan(clip)
        pick = torch.where(nan.any(0), nan.to(torch.int64).argmax(0), pick)
    return values.gather(0, pick[None, :, None].expand(1, *values.shape[1:]))[0]


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
    draws: Mapping[str, int] | None = None,
    seed: int = 0,
) -> dict[str, EvalResult]:
    """Score each predictor on the first ``limit`` clips of ``split``.

    Per-frame values ``[B, S]`` are summed per horizon step; the mean at step ``s`` is over
    clips and the overall mean over all frames. A NaN prediction is counted and propagates
    into the means (it is never averaged away). Each metric scores all predictions of a
    batch in one call (:meth:`vpbench.Metric.per_frame_many`), so what depends on the
    target alone is computed once. With ``cache``, the predictors it names are served
    from their stored per-clip scores when every per-frame metric has a version and the
    stored file checks out; otherwise they are scored and their scores stored.

    A set-level metric (:class:`vpbench.SetMetric`) gets one state per predictor, fed every
    batch (:meth:`~vpbench.SetMetric.update_many`, all predictors at once) and computed at
    the end; a predictor served from the cache still predicts when there is one.

    ``draws`` names predictors scored on several futures per clip (``eval.samples``; see
    :mod:`vpbench.sampled` for the keys they get and :mod:`vpbench.engine.draws` for the
    random streams, seeded from ``seed``).
    """
    frame = [m for m in metrics if isinstance(m.metric, Metric)]
    sets = [m for m in metrics if isinstance(m.metric, SetMetric)]
    n_draws = {p: max(1, (draws or {}).get(p, 1)) for p in predictors}
    entries = [_entry(m) for m in frame]
    cacheable = (
        cache is not None and bool(frame) and all(m.metric.version for m in frame) and len(set(entries)) == len(entries)
    )
    n_all = len(split)  # type: ignore[arg-type]
    n = min(n_all, limit) if limit is not None else n_all
    served: dict[str, dict[str, np.ndarray]] = {}
    if cache is not None and cacheable:
        for pname in predictors:
            if pname in cache.names and n_draws[pname] == 1:
                got = cache.store.load(cache.key(pname, entries))
                if got is not None and all(e in got and got[e].shape == (n, horizon) for e in entries) and got.get(
                    "nan_frames", np.empty(0)
                ).shape == (n,):
                    served[pname] = got
    running = [p for p in predictors if p not in served]
    predicting = list(predictors) if sets else running
    samplers = {p: Draws(predictors[p], n_draws[p], seed, device) for p in predicting if n_draws[p] > 1}
    per_clip: dict[str, dict[str, list[Tensor]]] = {p: {e: [] for e in entries} for p in running}  # [n, B, S] each
    nan_clips: dict[str, list[Tensor]] = {p: [] for p in running}
    # set-level states: (metric index, predictor) -> the first draw's state; sampled predictors
    # also have a state fed all their draws
    first: dict[tuple[int, str], Any] = {}
    every: dict[tuple[int, str], Any] = {}
    for i, m in enumerate(sets):
        assert isinstance(m.metric, SetMetric)
        for pname in predicting:
            first[i, pname] = m.metric.new_state()
            if pname in samplers:
                every[i, pname] = m.metric.new_state()
    sizes: list[int] = []
    bar = tqdm(total=n, desc=desc, unit="clip", disable=not progress, leave=False)
    for _, clip in eval_batches(split, batch_size=batch_size, limit=limit):
        clip = clip.to(device)
        ctx, true = clip[:, :context], clip[:, context : context + horizon]
        preds: dict[str, list[Tensor]] = {}
        for pname in predicting:
            outs = samplers[pname](ctx, horizon) if pname in samplers else [predictors[pname](ctx, horizon)]
            for pred in outs:
                check_prediction(pred, ctx, horizon, pname)
            preds[pname] = [pred.float() for pred in outs]
            if pname in nan_clips:
                nan_clips[pname].append(torch.isnan(preds[pname][0]).flatten(2).any(dim=2).sum(1).cpu())
        flat = [(pname, pred) for pname in running for pred in preds[pname]]
        if flat:
            for m, e in zip(frame, entries):
                assert isinstance(m.metric, Metric)
                scored = m.metric.per_frame_many([pred for _, pred in flat], true)
                start = 0
                for pname in running:
                    k = n_draws[pname]
                    per_clip[pname][e].append(torch.stack([v.double().cpu() for v in scored[start : start + k]]))
                    start += k
        for i, m in enumerate(sets):
            assert isinstance(m.metric, SetMetric)
            states = [first[i, p] for p in predicting] + [every[i, p] for p in samplers for _ in preds[p]]
            given = [preds[p][0] for p in predicting] + [pred for p in samplers for pred in preds[p]]
            m.metric.update_many(states, given, true, ctx)
        sizes.append(clip.shape[0])
        bar.update(clip.shape[0])
    bar.close()
    total = sum(sizes)
    values: dict[str, dict[str, Tensor]] = {}  # [n draws, N clips, S]
    nan_frames: dict[str, int] = {}
    for pname in predictors:
        if pname in served:
            got = served[pname]
            values[pname] = {e: torch.from_numpy(got[e])[None] for e in entries}
            nan_frames[pname] = int(got["nan_frames"].sum())
            continue
        empty = torch.zeros(n_draws[pname], 0, horizon, dtype=torch.float64)
        values[pname] = {e: torch.cat(v, dim=1) if v else empty for e, v in per_clip[pname].items()}
        nan = torch.cat(nan_clips[pname]) if nan_clips[pname] else torch.zeros(0, dtype=torch.int64)
        nan_frames[pname] = int(nan.sum())
        if cache is not None and cacheable and pname in cache.names and n_draws[pname] == 1:
            arrays = {e: v[0].numpy() for e, v in values[pname].items()}
            cache.store.save(cache.key(pname, entries), {**arrays, "nan_frames": nan.numpy()})
    results = {p: EvalResult() for p in predictors}
    for pname in predictors:
        res = results[pname]
        res.sequences = total
        res.nan_frames = nan_frames[pname]
        k = n_draws[pname]
        mean: dict[str, dict[str, MetricResult]] = {}  # the draws' keys, after the plain protocols
        best: dict[str, dict[str, MetricResult]] = {}
        for m, e in zip(frame, entries):
            v = values[pname][e]
            res.metrics.setdefault(m.protocol, {})[m.name] = _frame_result(_mean_curve(v[0], sizes, total), m.higher_is_better)
            if k > 1:
                mean.setdefault(sampled_key(m.protocol, MEAN, k), {})[m.name] = _frame_result(
                    _mean_curve(v.mean(0), sizes, total), m.higher_is_better
                )
                best.setdefault(sampled_key(m.protocol, BEST, k), {})[m.name] = _frame_result(
                    _mean_curve(best_of(v, m.higher_is_better), sizes, total), m.higher_is_better
                )
        for i, m in enumerate(sets):
            assert isinstance(m.metric, SetMetric)
            if (i, pname) not in first:
                continue
            res.metrics.setdefault(m.protocol, {})[m.name] = _set_result(m.metric, first[i, pname], m.higher_is_better)
            if (i, pname) in every:
                mean.setdefault(sampled_key(m.protocol, MEAN, k), {})[m.name] = _set_result(
                    m.metric, every[i, pname], m.higher_is_better
                )
        res.metrics.update(mean)
        res.metrics.update(best)
    return results
