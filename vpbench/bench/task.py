"""One suite run as a job of the shared cluster transport (:mod:`vpbench.cluster.transport`).

The node prepares the run's data first (a node that joined after the suite started has none
yet), then runs it in a scratch folder, sending its state back after every validation pass
and the finished run directory at the end. A retry starts from the last state stored on the
driver and resumes from it, exactly as ``vpbench run --resume`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..cluster.transport import RemoteRun
from .store import STATE_FILE
from .suite import PlannedRun

__all__ = ["run_job"]


def run_job(
    run: PlannedRun,
    *,
    resume: bool,
    device: str,
    data_root: str | None,
    compare: Sequence[str] | None,
    argv: Sequence[str],
    plugins: Sequence[object],
    shared: str | None = None,
) -> RemoteRun:
    """The job of ``run``: from its config, or (``resume``) from the state it is sent with (or,
    with ``shared``, the state in that folder on storage every node mounts)."""
    from ..engine.run import RunRequest

    kwargs: dict[str, Any] = {} if compare is None else {"compare": tuple(compare)}
    req = RunRequest(
        model=run.model,
        dataset=run.dataset,
        device=device,
        out=Path(run.name),
        resume=resume,
        data_root=Path(data_root) if data_root else None,
        progress=False,
        argv=list(argv),
        **kwargs,
    )
    text = None if resume else yaml.safe_dump(run.overrides, sort_keys=False)
    return RemoteRun(
        req, f"{run.name}.yaml" if text is not None else None, text, tuple(plugins), (run.dataset, dict(run.overrides), data_root),
        shared=shared, state_note=STATE_FILE if shared is not None else None,
    )
