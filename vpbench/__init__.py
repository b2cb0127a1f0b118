"""vpbench: an open benchmarking framework for video prediction.

Plugins implement the hooks in :mod:`vpbench.hookspecs` with the :data:`hookimpl` marker
and register in the ``vpbench`` entry-point group. Importing ``vpbench`` is cheap: the
torch-based contracts (:class:`VideoModel`, :class:`VideoDataset`, :class:`Metric`, ...)
are imported on first access, so ``vpbench plugins`` never loads torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from .configbase import ComponentConfig
from .errors import CheckpointError, ConfigError, DataError, VpbenchError
from .specs import DatasetSpec, MetricSpec, ModelSpec

if TYPE_CHECKING:
    from .interfaces import FrameShape, Metric, SetMetric, SetValue, Stage, StepOutput, VideoDataset, VideoModel

__version__ = "0.1.0"

#: Marker for hook implementations: ``@vpbench.hookimpl def register_models(register): ...``
hookimpl = pluggy.HookimplMarker("vpbench")

_LAZY = {"FrameShape", "Metric", "SetMetric", "SetValue", "Stage", "StepOutput", "VideoDataset", "VideoModel"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import interfaces

        return getattr(interfaces, name)
    raise AttributeError(f"module 'vpbench' has no attribute {name!r}")


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
    "SetMetric",
    "SetValue",
    "ModelSpec",
    "DatasetSpec",
    "MetricSpec",
    "VpbenchError",
    "ConfigError",
    "DataError",
    "CheckpointError",
]
