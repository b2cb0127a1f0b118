"""Pre-flight: check every component's contract on one batch before any training step.

A plugin that breaks the contract (clips of the wrong shape or dtype, 0-255 frames, a
prediction of the wrong shape, a metric returning ``[B]`` instead of ``[B, S]``) would
otherwise surface only after training, as a traceback or as a silently wrong record. Here
each violation becomes one line naming the component, the package that registered it,
what was expected and what came back; together they raise :class:`ContractError`.

The check leaves the random state and the model's train/eval mode as it found them, so a
run with the pre-flight trains exactly as one without it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor

from ..components import BoundMetric
from ..errors import ConfigError, ContractError, DataError, FramesTooSmallError, VpbenchError
from ..interfaces import SetMetric, SetValue, VideoDataset, VideoModel
from ..plugins import Registry, fault_line, without_hint
from .evaluate import Predictor
from .rng import capture_rng, restore_rng

__all__ = ["PLUGIN_FAULTS", "Preflight", "component", "metric_policy", "check_clips", "check_prediction_values", "check_metric_values", "check_set_value", "preflight"]

#: What a plugin's code raises when it breaks the contract (wrong shapes, missing axes,
#: bad dtypes): reported as a violation naming the plugin rather than as a traceback.
PLUGIN_FAULTS: tuple[type[BaseException], ...] = (
    VpbenchError,
    RuntimeError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    AttributeError,
    AssertionError,
    ZeroDivisionError,
)
#: Set to 1 to let a plugin's exception during the pre-flight propagate with its traceback.
TRACEBACK_ENV = "VPBENCH_TRACEBACK"
#: Values may leave [0, 1] by this much (float rounding of a resize or a normalisation).
RANGE_TOL = 1e-3
#: Clips drawn from each split.
CLIPS = 2

T = TypeVar("T")


@dataclass
class Preflight:
    """Violations found so far, one line each."""

    violations: list[str] = field(default_factory=list)
    #: said beside "fix the plugin" (e.g. how to run without a broken metric)
    hint: str = ""

    def add(self, who: str, problem: str) -> None:
        self.violations.append(f"{who}: {problem}")

    def call(self, who: str, what: str, fn: Callable[[], T]) -> T | None:
        """Run plugin code; a fault becomes a violation and ``None``."""
        try:
            return fn()
        except (DataError, ConfigError):
            raise  # missing data or a bad setting: the plugin's own message names the fix
        except PLUGIN_FAULTS as exc:
            if os.environ.get(TRACEBACK_ENV) == "1" and not isinstance(exc, VpbenchError):
                raise  # the plugin author asked for the full traceback
            self.add(who, f"{what} raised {fault_line(exc)}")
            return None

    def raise_if_any(self) -> None:
        if self.violations:
            n = len(self.violations)
            lines = "\n".join(f"  {v}" for v in self.violations)
            raise ContractError(
                f"pre-flight found {n} contract violation{'s' if n > 1 else ''} before training "
                f"(fix the plugin{', or ' + self.hint if self.hint else ''}; see docs/plugins.md; "
                f"{TRACEBACK_ENV}=1 shows a crash's traceback):\n{lines}"
            )


def _shape(x: Tensor) -> str:
    return "[" + ", ".join(str(d) for d in x.shape) + "]"


def _range(x: Tensor) -> tuple[float, float]:
    finite = x[torch.isfinite(x)]
    if finite.numel() == 0:
        return float("nan"), float("nan")
    return float(finite.min()), float(finite.max())


def _values(pf: Preflight, who: str, what: str, x: Tensor, bounds: tuple[float, float] = (0.0, 1.0)) -> bool:
    """dtype, finiteness and range (``bounds``, [0, 1] by default); True when all hold."""
    ok = True
    if not x.is_floating_point():
        pf.add(who, f"{what} must be a float tensor in [0, 1]; got dtype {x.dtype} (divide 8-bit frames by 255)")
        return False
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        pf.add(who, f"{what} must be finite; got {bad} NaN/inf values of {x.numel()}")
        ok = False
    lo, hi = _range(x.float())
    if lo < bounds[0] - RANGE_TOL or hi > bounds[1] + RANGE_TOL:
        hint = " (0-255 frames? divide by 255)" if hi > 2 else ""
        pf.add(who, f"{what} must lie in [{bounds[0]:g}, {bounds[1]:g}]; got values in [{lo:.4g}, {hi:.4g}]{hint}")
        ok = False
    return ok


def check_clips(pf: Preflight, who: str, split: str, clips: Sequence[Any], expected: tuple[int, ...]) -> bool:
    """Each item of a split is a float tensor ``[T + S, C, H, W]`` in [0, 1]."""
    want = "[" + ", ".join(map(str, expected)) + "] [T+S, C, H, W]"
    for i, clip in enumerate(clips):
        what = f"{split} clip {i}"
        if not isinstance(clip, Tensor):
            pf.add(who, f"{what} must be a torch.Tensor {want}; got {type(clip).__name__}")
            return False
        if tuple(clip.shape) != expected:
            pf.add(who, f"{what} must have shape {want} (from frame_shape, context and horizon); got {_shape(clip)}")
            return False
        if not _values(pf, who, what, clip):
            return False
    return True


def check_prediction_values(
    pf: Preflight, who: str, pred: Any, expected: tuple[int, ...], bounds: tuple[float, float] = (0.0, 1.0)
) -> bool:
    want = "[" + ", ".join(map(str, expected)) + "] [B, S, C, H, W]"
    if not isinstance(pred, Tensor):
        pf.add(who, f"predict must return a torch.Tensor {want}; got {type(pred).__name__}")
        return False
    if tuple(pred.shape) != expected:
        pf.add(who, f"predict must return shape {want}; got {_shape(pred)}")
        return False
    return _values(pf, who, "the prediction", pred, bounds)


def check_metric_values(pf: Preflight, who: str, values: Any, batch: int, horizon: int) -> bool:
    if not isinstance(values, Tensor):
        pf.add(who, f"per_frame must return a torch.Tensor [B, S] = [{batch}, {horizon}]; got {type(values).__name__}")
        return False
    if tuple(values.shape) != (batch, horizon):
        pf.add(who, f"per_frame must return [B, S] = [{batch}, {horizon}] (one value per predicted frame); got {_shape(values)}")
        return False
    if not values.is_floating_point():
        pf.add(who, f"per_frame must return float values; got dtype {values.dtype}")
        return False
    if not bool(torch.isfinite(values).all()):
        pf.add(who, "per_frame must be finite on a finite prediction; got NaN/inf")
        return False
    return True


def _set_value(metric: SetMetric, pred: Tensor, true: Tensor, context: Tensor) -> Any:
    """A set-level metric over one batch: a fresh state, one update, compute."""
    state = metric.new_state()
    metric.update(state, pred, true, context)
    return metric.compute(state)


def check_set_value(pf: Preflight, who: str, got: Any, clips: int) -> bool:
    """``compute`` returns a :class:`~vpbench.interfaces.SetValue` with a finite value."""
    if not isinstance(got, SetValue):
        pf.add(who, f"compute must return a vpbench.SetValue (one value for the whole set); got {type(got).__name__}")
        return False
    if isinstance(got.value, bool) or not isinstance(got.value, (int, float)):
        pf.add(who, f"compute must return SetValue(value=<float>); got value of type {type(got.value).__name__}")
        return False
    if not math.isfinite(got.value):
        pf.add(who, f"compute must return a finite value on {clips} finite clips; got {got.value}")
        return False
    return True


def _draw(pf: Preflight, who: str, dataset: VideoDataset, split: str) -> list[Any] | None:
    data = pf.call(who, f"split({split!r})", lambda: dataset.split(split))  # type: ignore[arg-type]
    if data is None:
        return None
    n = pf.call(who, f"len(split({split!r}))", lambda: len(data))  # type: ignore[arg-type]
    if n is None:
        return None
    if n == 0:
        pf.add(who, f"split({split!r}) must hold clips; it is empty")
        return None
    def item(i: int) -> Callable[[], Any]:
        return lambda: data[i]

    out = [pf.call(who, f"split({split!r})[{i}]", item(i)) for i in range(min(CLIPS, n))]
    return None if any(c is None for c in out) else out


@torch.no_grad()
def _run(
    pf: Preflight,
    dataset: VideoDataset,
    dataset_who: str,
    predictors: Sequence[tuple[str, Predictor]],
    metrics: Sequence[tuple[str, BoundMetric]],
    device: torch.device,
    bounds: tuple[float, float],
    faults: dict[tuple[str, str], list[str]],
    inapplicable: dict[str, str],
) -> None:
    shape = dataset.frame_shape.as_tuple()
    T, S = dataset.context, dataset.horizon
    expected = (T + S, *shape)
    batches = {}
    for split in ("train", "test"):
        clips = _draw(pf, dataset_who, dataset, split)
        if clips is None or not check_clips(pf, dataset_who, split, clips, expected):
            return  # nothing valid to feed the model
        batches[split] = torch.stack([c.float() for c in clips])
    batch = batches["test"].to(device)
    ctx, true = batch[:, :T], batch[:, T:]
    b = batch.shape[0]
    for who, predict in predictors:
        pred = pf.call(who, "predict", lambda predict=predict: predict(ctx, S))  # type: ignore[misc]
        if pred is None or not check_prediction_values(pf, who, pred, (b, S, *shape), bounds):
            continue
        for mwho, m in metrics:
            if m.name in inapplicable:
                continue
            mpf = Preflight()
            try:
                if isinstance(m.metric, SetMetric):
                    got = mpf.call(mwho, "new_state/update/compute", lambda m=m: _set_value(m.metric, pred.float(), true, ctx))  # type: ignore[misc]
                    if got is not None:
                        check_set_value(mpf, mwho, got, b)
                else:
                    values = mpf.call(mwho, "per_frame", lambda m=m: m.metric.per_frame(pred.float(), true))  # type: ignore[misc]
                    if values is not None:
                        check_metric_values(mpf, mwho, values, b, S)
            except FramesTooSmallError as exc:  # the metric does not apply to frames this small
                inapplicable[m.name] = str(exc).splitlines()[0]
                continue
            for line in mpf.violations:
                faults.setdefault((m.name, line), []).append(m.protocol)


def _metric_lines(faults: dict[tuple[str, str], list[str]]) -> list[tuple[str, str, str]]:
    """``(metric name, who, problem)`` once per fault of a metric, naming the protocols it shows
    under: a bug in a metric's code is one line, not one per protocol."""
    out = []
    for (name, line), protocols in faults.items():
        who, _, problem = line.partition(": ")
        names = ", ".join(repr(p) for p in dict.fromkeys(protocols))
        out.append((name, f"{who} under protocol{'s' if len(set(protocols)) > 1 else ''} {names}", problem))
    return out


def preflight(
    dataset: VideoDataset,
    dataset_who: str,
    predictors: Sequence[tuple[str, Predictor]],
    metrics: Sequence[tuple[str, BoundMetric]],
    device: torch.device,
    models: Sequence[torch.nn.Module] = (),
    prediction_bounds: tuple[float, float] = (0.0, 1.0),
    *,
    optional: Collection[str] = (),
    warn: Callable[[str], None] | None = None,
    without: Callable[[list[str]], str] | None = None,
    left_out: dict[str, str] | None = None,
) -> list[BoundMetric]:
    """Check dataset, predictors and metrics on one train and one test batch.

    Args:
        dataset_who, and the first item of each pair: how a violation names the component,
            e.g. ``"model 'flip' (vpbench-flip 1.2.3)"``.
        models: modules to put in eval mode for the check (their mode is restored).
        prediction_bounds: the range predictions must lie in; [0, 1] is the VideoModel
            contract, predictions made elsewhere may be unclipped.
        optional: names of metrics nobody asked for by name (every installed metric runs
            by default): a broken one is left out, ``warn`` is told once, and the run goes on.
        without: given the broken metrics that were asked for by name, how to run without
            them (said in the error's first line).
        left_out: filled with ``name -> why`` for each optional metric that refuses this
            dataset's frames (:class:`FramesTooSmallError`: smaller than its window):
            it is left out with a warning; one asked for by name is a one-line DataError.

    Returns:
        The metrics that passed (all of ``metrics`` but the broken optional ones).

    Raises:
        ContractError: one line per violation.
        DataError: a metric asked for by name refuses this dataset's frames.
    """
    pf = Preflight()
    faults: dict[tuple[str, str], list[str]] = {}
    inapplicable: dict[str, str] = {}
    rng = capture_rng()
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        _run(pf, dataset, dataset_who, predictors, metrics, device, prediction_bounds, faults, inapplicable)
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)
        restore_rng(rng)
    named = sorted(n for n in inapplicable if n not in optional)
    if named:
        fix = without(named) if without is not None else "leave it out of eval.metrics"
        raise DataError(f"metric '{named[0]}' does not apply to {dataset_who}: {inapplicable[named[0]]}; {fix}")
    for name, why in inapplicable.items():
        if warn is not None:
            warn(f"metric '{name}' does not apply to {dataset_who} and was left out: {why}")
        if left_out is not None:
            left_out[name] = f"does not apply to these frames: {why}"
    skipped = {name for name, _ in faults if name in optional}
    for name, who, problem in _metric_lines(faults):
        if name not in skipped:
            pf.add(who, problem)
        elif warn is not None:
            warn(f"{who} is broken and was left out: {problem} (fix or uninstall it; `vpbench check --metric {name}` shows every fault)")
    broken = sorted({name for name, _ in faults} - skipped)
    if broken and without is not None:
        pf.hint = without(broken)
    pf.raise_if_any()
    return [m for _, m in metrics if m.name not in skipped and m.name not in inapplicable]


def component(registry: Registry, kind: str, name: str) -> str:
    """``"model 'flip' (package vpbench-flip 1.2.3)"``: how a violation names its component."""
    table = {"model": registry.models, "dataset": registry.datasets, "metric": registry.metrics}[kind]
    return f"{kind} {name!r} (package {table.entry(name).package})"  # type: ignore[attr-defined]


def metric_policy(
    registry: Registry, metrics: Sequence[BoundMetric], requested: Sequence[str] | None, warn: Callable[[str], None] | None
) -> dict[str, Any]:
    """:func:`preflight`'s ``optional``, ``warn`` and ``without`` for a command whose
    ``eval.metrics`` is ``requested`` (None: every installed metric, none asked for by name)."""
    return {
        "optional": [m.name for m in metrics] if requested is None else (),
        "warn": warn,
        "without": lambda broken: without_hint(registry, requested, broken),
    }
