"""The hook specifications: the whole plugin contract.

A plugin is a module (or object) registered in the ``vpbench`` entry-point group that
implements some of these hooks with the :data:`vpbench.hookimpl` marker. Each hook receives
a ``register`` callback and calls it once per component it offers. See docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from .specs import DatasetSpec, MetricSpec, ModelSpec

hookspec = pluggy.HookspecMarker("vpbench")

__all__ = ["hookspec", "register_models", "register_datasets", "register_metrics", "register_commands"]


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Call ``register(ModelSpec(...))`` for every model this plugin offers."""


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Call ``register(DatasetSpec(...))`` for every dataset this plugin offers."""


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Call ``register(MetricSpec(...))`` for every metric this plugin offers."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add ``click`` commands to the ``vpbench`` command group ``cli``."""
