"""vpbench: an open benchmarking framework for video prediction.

Plugins implement the hooks in :mod:`vpbench.hookspecs` with the :data:`hookimpl` marker
and register in the ``vpbench`` entry-point group.
"""

from __future__ import annotations

import pluggy

from .errors import ConfigError, DataError, VpbenchError
from .interfaces import ComponentConfig, FrameShape, Metric, Stage, StepOutput, VideoDataset, VideoModel
from .specs import DatasetSpec, MetricSpec, ModelSpec

__version__ = "0.1.0"

#: Marker for hook implementations: ``@vpbench.hookimpl def register_models(register): ...``
hookimpl = pluggy.HookimplMarker("vpbench")

__all__ = [
    "__version__",
    "hookimpl",
    "ComponentConfig",
    "FrameShape",
    "VideoDataset",
    "VideoModel",
    "Stage",
    "StepOutput",
    "Metric",
    "ModelSpec",
    "DatasetSpec",
    "MetricSpec",
    "VpbenchError",
    "ConfigError",
    "DataError",
]
