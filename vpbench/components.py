"""Build a dataset, a model and metrics from their registered specs and config sections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import validate_section
from .errors import ConfigError, PluginError
from .interfaces import FrameShape, Metric, VideoDataset, VideoModel
from .plugins import Registry

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
    """A metric instance under one protocol."""

    name: str
    protocol: str
    higher_is_better: bool
    metric: Metric


def build_metrics(
    registry: Registry, names: Sequence[str] | None, protocols: Sequence[str]
) -> tuple[list[BoundMetric], dict[str, str]]:
    """Instantiate each metric under each protocol; return also the unavailable ones and why."""
    chosen = list(names) if names is not None else registry.metrics.names()
    bound: list[BoundMetric] = []
    unavailable: dict[str, str] = {}
    for name in chosen:
        spec = registry.metrics.get(name)
        cls = spec.load()
        for protocol in protocols:
            if protocol not in spec.protocols:
                raise ConfigError(
                    f"metric {name!r} has no protocol {protocol!r}; it offers: {', '.join(spec.protocols)}"
                )
            metric = cls(protocol=protocol)
            reason = metric.available()
            if reason is not None:
                unavailable[name] = reason
                continue
            bound.append(BoundMetric(name, protocol, spec.higher_is_better, metric))
    return bound, unavailable
