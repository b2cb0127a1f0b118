"""Metric checks, under each protocol a metric offers: its direction, ``[B, S]`` output, a
perfect prediction scoring best, and the same values whether clips come in one batch or two."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor

from ..engine.preflight import component
from ..interfaces import Metric
from ..plugins import Registry
from .cases import Case, NotApplicable, fail

__all__ = ["metric_cases"]

B, S, C, H, W = 4, 3, 1, 64, 64


def _pair() -> tuple[Tensor, Tensor]:
    """A smooth ground truth in [0, 1] and a noisy, shifted prediction of it."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(B, S, C, H // 8, W // 8, generator=g)
    true = torch.nn.functional.interpolate(coarse.flatten(0, 1), size=(H, W), mode="bilinear", align_corners=False)
    true = true.view(B, S, C, H, W).clamp(0, 1)
    pred = (true.roll(3, dims=-1) + 0.1 * torch.randn(true.shape, generator=g)).clamp(0, 1)
    return pred, true


def _metric(registry: Registry, name: str, protocol: str) -> Metric:
    """The metric under ``protocol``; its own faults (import, constructor) reach the case as they are."""
    metric: Metric = registry.metrics.get(name).load()(protocol=protocol)
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


def metric_cases(registry: Registry, names: Sequence[str] | None = None) -> list[Case]:
    chosen = list(names) if names is not None else registry.metrics.names()
    checks = {
        "direction": check_direction,
        "shape": check_shape,
        "perfect-is-best": check_perfect_is_best,
        "batch-independent": check_batching,
    }
    out: list[Case] = []
    for name in chosen:
        spec = registry.metrics.get(name)
        who = component(registry, "metric", name)
        if not spec.protocols:
            out.append(Case("metric", name, "protocols", partial(fail, f"metric {name!r} registers no protocol"), who))
        for protocol in spec.protocols:
            for label, fn in checks.items():
                out.append(Case("metric", name, f"{protocol}-{label}", partial(fn, registry, name, protocol), who, protocol))
    return out
