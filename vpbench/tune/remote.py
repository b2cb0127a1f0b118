"""``vpbench run --address``: one run as a Ray task on a cluster, its directory brought back.

The request is validated here first (bad keys fail before anything is sent). The config
file travels as text; a resumed run's directory travels as a tar; the finished run
directory comes back as a tar and lands at the same ``--out`` a local run would use.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .cluster import forwarded_plugins, ray_session, user_errors
from .pack import pack_dir, unpack_dir

__all__ = ["submit_run"]

Echo = Callable[[str], None]


def _remote_run(req: Any, config_name: str | None, config_text: str | None, state: bytes | None, plugins: list[object]) -> tuple[bytes, str]:
    """Body of the Ray task: run in a scratch folder, return the packed run directory."""
    import socket

    from ..engine.run import execute_run
    from ..plugins import get_registry

    work = Path(tempfile.mkdtemp(prefix="vpbench-remote-"))
    try:
        out = work / req.out.name
        config_file = None
        if config_text is not None:
            config_file = work / "config" / (config_name or "config.yaml")
            config_file.parent.mkdir()
            config_file.write_text(config_text, encoding="utf-8")
        if state is not None:
            unpack_dir(state, out)
        local = replace(req, out=out, config_file=config_file, progress=False)
        _, run_dir = execute_run(local, get_registry(plugins), echo=print)
        return pack_dir(run_dir), socket.gethostname()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def submit_run(req: Any, registry: Any, address: str, echo: Echo = print) -> tuple[Any, Path]:
    """Run ``req`` (a :class:`vpbench.engine.run.RunRequest`) on the cluster at ``address``.

    Returns the record and the local run directory, exactly as ``execute_run`` does.
    """
    from ..engine.run import resolve_request
    from ..records import read_record

    if req.on_validation is not None:
        raise ConfigError("a run submitted to a cluster cannot call back into this process (on_validation)")
    res = resolve_request(req, registry)  # validates flags and config here, before submitting
    out = res.run_dir.root
    source = None if res.resumed else (Path(res.config_source) if res.config_source else None)
    config_text = source.read_text(encoding="utf-8") if source is not None else None
    state = pack_dir(out) if res.resumed else None
    data_root = req.data_root or os.environ.get("VPBENCH_DATA")
    sent = replace(
        req,
        out=Path(out.name),
        config_file=None,
        data_root=Path(data_root) if data_root else None,
        device="cpu" if req.device == "auto" else req.device,
    )
    with ray_session(address):
        import ray

        cluster_gpus = ray.cluster_resources().get("GPU", 0)  # type: ignore[no-untyped-call]
        gpus = 1 if req.device == "cuda" or (req.device == "auto" and cluster_gpus >= 1) else 0
        if gpus:
            sent = replace(sent, device="cuda")
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_remote_run)
        echo(f"submitting {res.model} on {res.dataset} to the Ray cluster at {address} ({'1 GPU' if gpus else 'CPU'})")
        with user_errors():
            packed, host = ray.get(
                task.remote(sent, source.name if source else None, config_text, state, forwarded_plugins(registry))
            )
    unpack_dir(packed, out, replace=res.resumed)
    echo(f"run finished on {host}; run directory copied to {out}")
    return read_record(out / "record.json"), out
