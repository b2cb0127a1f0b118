"""Metric checks, under each protocol a metric offers: its direction, ``[B, S]`` output, a
perfect prediction scoring best, and the same values whether clips come in one batch or two.

A set-level metric (:class:`vpbench.SetMetric`) gets the same checks on one value of a
whole set: ``compute`` returns a finite :class:`vpbench.SetValue`, the truth itself scores
best, and the value does not depend on how the set is cut into batches or on whether its
states are updated one by one or together (``update_many``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

from ..engine.preflight import component
from ..interfaces import Metric, SetMetric, SetValue
from ..plugins import Registry
from .cases import Case, NotApplicable, fail

__all__ = ["metric_cases"]

B, S, C, H, W = 4, 3, 1, 64, 64


#: a set-level metric's set: clips, context frames and predicted frames (enough frames for a
#: video feature network, enough clips for a spread of features)
SET_B, SET_T, SET_S = 8, 4, 8


def _pair(b: int = B, s: int = S) -> tuple[Tensor, Tensor]:
    """A smooth ground truth in [0, 1] and a noisy, shifted prediction of it."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(b, s, C, H // 8, W // 8, generator=g)
    true = torch.nn.functional.interpolate(coarse.flatten(0, 1), size=(H, W), mode="bilinear", align_corners=False)
    true = true.view(b, s, C, H, W).clamp(0, 1)
    pred = (true.roll(3, dims=-1) + 0.1 * torch.randn(true.shape, generator=g)).clamp(0, 1)
    return pred, true


def _metric(registry: Registry, name: str, protocol: str) -> Any:
    """The metric under ``protocol``; its own faults (import, constructor) reach the case as they are."""
    spec = registry.metrics.get(name)
    metric = spec.load()(protocol=protocol)
    want = SetMetric if spec.level == "set" else Metric
    if not isinstance(metric, want):
        fail(f"metric {name!r}: its spec says level={spec.level!r}; its class must subclass vpbench.{want.__name__}")
    reason = metric.available()
    if reason is not None:
        raise NotApplicable(f"metric unavailable: {reason}")
    return metric


def _values(name: str, protocol: str, metric: Metric, pred: Tensor, true: Tensor) -> Tensor:
    out = metric.per_frame(pred, true)
    b, s = pred.shape[:2]
    if not isinstance(out, Tensor) or tuple(out.shape) != (b, s):
        got = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
        fail(f"metric {name!r} ({protocol}): per_frame must return [B, S] = [{b}, {s}]; got {got}")
    if not out.is_floating_point() or not bool(torch.isfinite(out).all()):
        fail(f"metric {name!r} ({protocol}): per_frame must return finite float values; got {out.dtype}, {out.tolist()}")
    return out.double().cpu()


def check_direction(registry: Registry, name: str, protocol: str) -> None:
    """The class's ``higher_is_better`` agrees with the spec's."""
    spec = registry.metrics.get(name)
    metric = _metric(registry, name, protocol)
    own = getattr(type(metric), "higher_is_better", None)
    if own is not None and bool(own) != spec.higher_is_better:
        fail(f"metric {name!r}: the spec says higher_is_better={spec.higher_is_better}, the class says {own}")


def check_shape(registry: Registry, name: str, protocol: str) -> None:
    pred, true = _pair()
    _values(name, protocol, _metric(registry, name, protocol), pred, true)


def check_perfect_is_best(registry: Registry, name: str, protocol: str) -> None:
    """The ground truth itself scores at least as well as any other prediction, frame by frame."""
    spec = registry.metrics.get(name)
    metric = _metric(registry, name, protocol)
    pred, true = _pair()
    perfect = _values(name, protocol, metric, true.clone(), true)
    other = _values(name, protocol, metric, pred, true)
    better = perfect >= other if spec.higher_is_better else perfect <= other
    strictly = perfect > other if spec.higher_is_better else perfect < other
    if not bool(better.all()) or not bool(strictly.any()):
        word = "higher" if spec.higher_is_better else "lower"
        fail(
            f"metric {name!r} ({protocol}): a perfect prediction must score best ({word} is better); "
            f"perfect {perfect.mean():.6g} vs noisy {other.mean():.6g}"
        )


def check_batching(registry: Registry, name: str, protocol: str) -> None:
    """Per-frame values do not depend on which other clips share the batch."""
    metric = _metric(registry, name, protocol)
    pred, true = _pair()
    whole = _values(name, protocol, metric, pred, true)
    halves = torch.cat([_values(name, protocol, metric, pred[:2], true[:2]), _values(name, protocol, metric, pred[2:], true[2:])])
    if not torch.allclose(whole, halves, rtol=1e-5, atol=1e-6):
        diff = float((whole - halves).abs().max())
        fail(f"metric {name!r} ({protocol}): values change with the batch (max difference {diff:.3g}); score each clip on its own")


def _set_parts() -> tuple[Tensor, Tensor, Tensor]:
    """A set of clips: context ``[B, T, ...]``, a noisy prediction and the truth ``[B, S, ...]``."""
    pred, clip = _pair(SET_B, SET_T + SET_S)
    return clip[:, :SET_T], pred[:, SET_T:], clip[:, SET_T:]


def _set_value(name: str, protocol: str, metric: SetMetric, batches: Sequence[tuple[Tensor, Tensor, Tensor]]) -> float:
    """The metric's value of one state fed ``batches`` of ``(context, pred, true)``."""
    state = metric.new_state()
    for ctx, pred, true in batches:
        metric.update(state, pred, true, ctx)
    got = metric.compute(state)
    if not isinstance(got, SetValue):
        fail(f"metric {name!r} ({protocol}): compute must return a vpbench.SetValue; got {type(got).__name__}")
    value = got.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not torch.isfinite(torch.tensor(float(value))):
        fail(f"metric {name!r} ({protocol}): compute must return SetValue(value=<finite float>); got {value!r}")
    if got.spread is not None and not (isinstance(got.spread, (int, float)) and got.spread >= 0):
        fail(f"metric {name!r} ({protocol}): SetValue.spread must be None or a float >= 0; got {got.spread!r}")
    return float(value)


def check_set_shape(registry: Registry, name: str, protocol: str) -> None:
    ctx, pred, true = _set_parts()
    _set_value(name, protocol, _metric(registry, name, protocol), [(ctx, pred, true)])


def check_set_perfect_is_best(registry: Registry, name: str, protocol: str) -> None:
    """The truth itself, as the prediction of every clip, scores strictly better than a noisy one."""
    spec = registry.metrics.get(name)
    metric = _metric(registry, name, protocol)
    ctx, pred, true = _set_parts()
    perfect = _set_value(name, protocol, metric, [(ctx, true.clone(), true)])
    other = _set_value(name, protocol, metric, [(ctx, pred, true)])
    if not (perfect > other if spec.higher_is_better else perfect < other):
        word = "higher" if spec.higher_is_better else "lower"
        fail(f"metric {name!r} ({protocol}): a perfect prediction must score best ({word} is better); perfect {perfect:.6g} vs noisy {other:.6g}")


def check_set_batching(registry: Registry, name: str, protocol: str) -> None:
    """One batch or two give the same value, and ``update_many`` of two states equals two ``update`` calls."""
    metric = _metric(registry, name, protocol)
    ctx, pred, true = _set_parts()
    h = SET_B // 2
    whole = _set_value(name, protocol, metric, [(ctx, pred, true)])
    halves = _set_value(name, protocol, metric, [(ctx[:h], pred[:h], true[:h]), (ctx[h:], pred[h:], true[h:])])
    if abs(whole - halves) > 1e-5 * max(abs(whole), abs(halves)) + 1e-6:
        fail(f"metric {name!r} ({protocol}): the value changes with the batches ({whole:.8g} in one, {halves:.8g} in two); "
             "accumulate per clip in the state")
    a, b = metric.new_state(), metric.new_state()
    metric.update_many([a, b], [pred, true.clone()], true, ctx)
    together = (float(metric.compute(a).value), float(metric.compute(b).value))
    alone = (whole, _set_value(name, protocol, metric, [(ctx, true.clone(), true)]))
    if any(abs(x - y) > 1e-5 * max(abs(x), abs(y)) + 1e-6 for x, y in zip(together, alone)):
        fail(f"metric {name!r} ({protocol}): update_many gives {together}, update one by one {alone}; they must agree")


def metric_cases(registry: Registry, names: Sequence[str] | None = None) -> list[Case]:
    chosen = list(names) if names is not None else registry.metrics.names()
    frame_checks = {
        "direction": check_direction,
        "shape": check_shape,
        "perfect-is-best": check_perfect_is_best,
        "batch-independent": check_batching,
    }
    set_checks = {
        "direction": check_direction,
        "set-value": check_set_shape,
        "perfect-is-best": check_set_perfect_is_best,
        "batch-independent": check_set_batching,
    }
    out: list[Case] = []
    for name in chosen:
        spec = registry.metrics.get(name)
        who = component(registry, "metric", name)
        if not spec.protocols:
            out.append(Case("metric", name, "protocols", partial(fail, f"metric {name!r} registers no protocol"), who))
        checks = set_checks if spec.level == "set" else frame_checks
        for protocol in spec.protocols:
            for label, fn in checks.items():
                out.append(Case("metric", name, f"{protocol}-{label}", partial(fn, registry, name, protocol), who, protocol))
    return out
