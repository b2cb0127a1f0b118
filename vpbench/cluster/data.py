"""Data on every node: prepared before any run starts, on the driver and on every other node
of a cluster (one task each), each under a file lock in the data root so concurrent
preparers wait. A node that joins later prepares (or waits for) its data in the run's task.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["prepare_data", "prepare_on_nodes"]


def _lock(data_root: Path, dataset: str) -> Any:
    from filelock import FileLock

    data_root.mkdir(parents=True, exist_ok=True)
    return FileLock(str(data_root / f".prepare-{dataset}.lock"))


def prepare_data(registry: Any, dataset: str, overrides: Mapping[str, Any], data_root: Path, *, progress: bool = True) -> None:
    """Prepare and check a dataset once, under a lock in the data root."""
    from ..components import build_dataset

    ds = build_dataset(registry, dataset, overrides, data_root, seed=0)
    with _lock(data_root, dataset):
        ds.prepare(progress=progress)
    ds.check()


def _prepare_task(dataset: str, overrides: dict[str, Any], data_root: str | None, plugins: list[object]) -> str:
    from ..data.root import resolve_data_root
    from ..plugins import get_registry

    root = resolve_data_root(data_root)
    prepare_data(get_registry(plugins), dataset, overrides, root, progress=False)
    return socket.gethostname()


def prepare_on_nodes(dataset: str, overrides: Mapping[str, Any], data_root: str | None, plugins: list[object]) -> int:
    """Prepare the data on every alive node of the connected cluster (one task each)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .connect import user_errors
    from .interrupt import gather

    task = ray.remote(num_cpus=0)(_prepare_task)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    refs = [
        task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            dataset, dict(overrides), data_root, plugins
        )
        for node in nodes
    ]
    with user_errors():
        gather(ray, refs)
    return len(nodes)
