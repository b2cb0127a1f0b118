"""Build a dataset, a model and metrics from their registered specs and config sections."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import validate_section
from .errors import ConfigError, PluginError
from .interfaces import FrameShape, Metric, SetMetric, VideoDataset, VideoModel
from .plugins import Registry, fault_line, without_hint

__all__ = ["BoundMetric", "build_dataset", "build_model", "build_metrics"]


def build_dataset(registry: Registry, name: str, overrides: Mapping[str, Any], data_root: Path, seed: int) -> VideoDataset:
    cls = registry.datasets.get(name).load()
    if not (isinstance(cls, type) and issubclass(cls, VideoDataset)):
        raise PluginError(f"dataset {name!r} target is not a vpbench.VideoDataset subclass")
    config = validate_section(cls.Config, overrides, "dataset")
    return cls(config, data_root, seed=seed)


def build_model(
    registry: Registry, name: str, overrides: Mapping[str, Any], frame_shape: FrameShape, context: int, horizon: int
) -> VideoModel:
    cls = registry.models.get(name).load()
    if not (isinstance(cls, type) and issubclass(cls, VideoModel)):
        raise PluginError(f"model {name!r} target is not a vpbench.VideoModel subclass")
    config = validate_section(cls.Config, overrides, "model")
    return cls(config, frame_shape, context, horizon)


@dataclass(frozen=True)
class BoundMetric:
    """A metric instance under one protocol: per clip and frame (:class:`Metric`) or of the
    whole test set (:class:`SetMetric`, ``level == "set"``)."""

    name: str
    protocol: str
    higher_is_better: bool
    metric: Metric | SetMetric

    @property
    def level(self) -> str:
        return "set" if isinstance(self.metric, SetMetric) else "frame"


def _broken(registry: Registry, name: str, names: Sequence[str] | None, exc: Exception) -> str:
    """The warning for a broken metric left out of the run; a :class:`PluginError` if it was named."""
    who = f"metric {name!r} (package {registry.metrics.entry(name).package})"
    cause = exc.__cause__ if isinstance(exc, PluginError) and isinstance(exc.__cause__, Exception) else exc
    fault = fault_line(cause)
    if names is not None:
        raise PluginError(f"{who} is broken: {fault}; fix or uninstall it, or {without_hint(registry, names, [name])}") from exc
    return f"{who} is broken and was left out: {fault} (fix or uninstall it; `vpbench check --metric {name}` shows every fault)"


def build_metrics(
    registry: Registry,
    names: Sequence[str] | None,
    protocols: Sequence[str],
    warn: Callable[[str], None] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[BoundMetric], dict[str, str]]:
    """Instantiate each metric under each protocol; return also the unavailable ones and why.

    With ``names`` None (every registered metric), a metric that lacks one of the
    ``protocols`` is skipped for that protocol and ``warn`` is told; a metric named
    explicitly must offer every protocol. ``options`` (``eval.metric_options``) are passed to
    the named metrics' constructors as keyword arguments.
    """
    options = dict(options or {})
    for name in options:
        if name not in registry.metrics.names():
            raise ConfigError(f"eval.metric_options names unknown metric {name!r}; valid metrics: {', '.join(registry.metrics.names())}")
    chosen = list(names) if names is not None else registry.metrics.names()
    bound: list[BoundMetric] = []
    unavailable: dict[str, str] = {}
    for name in chosen:
        spec = registry.metrics.get(name)
        cls = None
        for protocol in protocols:
            if protocol not in spec.protocols:
                offers = ", ".join(spec.protocols) or "none"
                if names is None:
                    if warn is not None:
                        warn(
                            f"metric {name!r} (package {registry.metrics.entry(name).package}) has no protocol "
                            f"{protocol!r} (it offers: {offers}); skipped under {protocol!r}"
                        )
                    continue
                raise ConfigError(
                    f"metric {name!r} has no protocol {protocol!r}; it offers: {offers}"
                )
            try:
                if cls is None:
                    cls = spec.load()
                metric = _construct(cls, name, protocol, options.get(name, {}))
                want = SetMetric if spec.level == "set" else Metric
                if not isinstance(metric, want):
                    raise PluginError(
                        f"its spec says level={spec.level!r}, so its target must be a vpbench.{want.__name__} "
                        f"subclass; got {type(metric).__name__}"
                    )
                reason = metric.available()
            except ConfigError:  # the user's eval.metric_options, not the metric, is wrong
                raise
            # The metric's own code (import, constructor, available()) may raise anything: one
            # broken metric that nobody asked for by name must not stop every run.
            except Exception as exc:
                line = _broken(registry, name, names, exc)  # raises when the metric was named
                if warn is not None:
                    warn(line)
                break
            if reason is not None:
                unavailable[name] = reason
                continue
            bound.append(BoundMetric(name, protocol, spec.higher_is_better, metric))
    return bound, unavailable


def _construct(cls: Any, name: str, protocol: str, options: Mapping[str, Any]) -> Any:
    """``cls(protocol=..., **options)``; options it does not take are a config error."""
    if not options:
        return cls(protocol=protocol)
    try:
        return cls(protocol=protocol, **options)
    except TypeError as exc:  # an unexpected keyword argument
        raise ConfigError(
            f"eval.metric_options.{name}: the metric does not take {sorted(options)} ({exc}); see its docs for its options"
        ) from None
