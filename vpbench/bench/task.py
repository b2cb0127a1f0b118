"""One suite run as a Ray task: prepare the data on this node, run (or resume), ship state back.

The task works in a scratch folder of its node. After every validation pass it sends the
run's resumable state to the driver's :class:`~vpbench.bench.store.RunStore`; at the end it
returns the finished run directory packed as a tar. A retry gets the last stored state and
resumes from it, exactly as ``vpbench run --resume`` does.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..fsutil import atomic_write_text

__all__ = ["RunTask", "run_task"]


@dataclass(frozen=True)
class RunTask:
    """Everything a node needs for one run (pickled to it)."""

    key: str
    name: str
    model: str
    dataset: str
    overrides: dict[str, Any]
    device: str = "cpu"
    data_root: str | None = None
    compare: Sequence[str] | None = None
    argv: Sequence[str] = ()
    plugins: Sequence[object] = field(default_factory=tuple)


def run_task(task: RunTask, state: bytes | None, store: Any) -> tuple[bytes, dict[str, Any]]:
    """Body of the Ray task; returns the packed run directory and a short summary."""
    import ray

    from ..config import build_run_config
    from ..data.root import resolve_data_root
    from ..engine.run import RunRequest, execute_run
    from ..plugins import get_registry
    from ..tune.cluster import prepare_data
    from ..tune.pack import pack_dir, pack_state, unpack_dir
    from .store import STATE_FILE

    host = f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:8]}"  # machine and Ray node
    registry = get_registry(task.plugins)
    cfg = build_run_config(task.overrides)
    # a node that joined after the suite started prepares (or waits for) its data here, under the lock
    prepare_data(registry, task.dataset, cfg.dataset, resolve_data_root(task.data_root), progress=False)
    work = Path(tempfile.mkdtemp(prefix="vpbench-bench-"))
    run_dir = work / task.name
    try:
        config_file: Path | None = None
        if state is not None:
            unpack_dir(state, run_dir)
            (run_dir / STATE_FILE).unlink(missing_ok=True)
        else:
            config_file = work / f"{task.name}.yaml"
            atomic_write_text(config_file, yaml.safe_dump(task.overrides, sort_keys=False))

        def on_validation(step: int, values: dict[str, float], ckpt_dir: Path) -> None:
            ray.get(store.put.remote(task.key, step, host, pack_state(run_dir)))

        kwargs: dict[str, Any] = {} if task.compare is None else {"compare": tuple(task.compare)}
        req = RunRequest(
            model=task.model,
            dataset=task.dataset,
            config_file=config_file,
            device=task.device,
            out=run_dir,
            resume=state is not None,
            data_root=Path(task.data_root) if task.data_root else None,
            progress=False,
            argv=list(task.argv),
            on_validation=on_validation,
            **kwargs,
        )
        record, _ = execute_run(req, registry, echo=print)
        means = {name: res.mean for name, res in record.metrics.get("openstl", {}).items()}
        summary = {"host": host, "steps": record.train.steps_done, "wall_time_s": record.wall_time_s, "metrics": means}
        return pack_dir(run_dir), summary
    finally:
        shutil.rmtree(work, ignore_errors=True)
