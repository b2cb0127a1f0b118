"""``vpbench run --address``: one run as a Ray task on a cluster, its directory brought back.

The request is validated here first (bad keys fail before anything is sent). The config
file travels as text; a resumed run's directory travels as a tar. The task asks Ray for
the CPUs and GPUs given (``--cpus``, ``--gpus``, ``--device``) and streams the run's
resumable state (``run.yaml`` and ``checkpoints/``) back through the shared transport
(:mod:`vpbench.cluster.transport`): each state is written to ``--out`` as it arrives. So
nothing is lost when the worker dies (the driver starts the task again from the last state,
``--max-retries`` times), nor when the driver itself is stopped: Ctrl-C, SIGTERM or SIGHUP
end it cleanly, and even a SIGKILL leaves the last state in ``--out``, a run directory
``vpbench run --resume --out`` (with or without ``--address``) continues. The finished run
directory lands at the same ``--out`` a local run would use. With ``--shared-out``
(:mod:`vpbench.cluster.shared`) the node writes the states and the finished directory to
``--out`` itself and the messages carry only the step; everything else is the same.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TrainingError
from .connect import forwarded_plugins, ray_session, user_errors
from .interrupt import cancel_all, sigint_flag
from .pack import pack_state, recover_dir, unpack_dir
from .transport import RemoteRun, follow, receive, remote_task

__all__ = ["submit_run"]

Echo = Callable[[str], None]


def _resources(req: Any, cpus: float, gpus: float | None, cluster_gpus: float) -> tuple[float, float, str]:
    """Ray resources and the device of the task, from --cpus, --gpus and --device."""
    if cpus <= 0 or (gpus is not None and gpus < 0):
        raise ConfigError(f"--cpus must be positive and --gpus >= 0, got --cpus {cpus:g} --gpus {gpus:g}" if gpus is not None else f"--cpus must be positive, got {cpus:g}")
    if gpus is None:
        gpus = 1.0 if req.device == "cuda" or (req.device == "auto" and cluster_gpus >= 1) else 0.0
    if gpus > 0 and req.device == "cpu":
        raise ConfigError(f"--gpus {gpus:g} with --device cpu: drop --gpus, or use --device cuda")
    if gpus == 0 and req.device == "cuda":
        raise ConfigError("--device cuda with --gpus 0: the task would get no GPU; give --gpus 1 (or more)")
    return cpus, gpus, "cuda" if gpus > 0 else "cpu"


def submit_run(
    req: Any,
    registry: Any,
    address: str,
    echo: Echo = print,
    *,
    cpus: float = 1.0,
    gpus: float | None = None,
    max_retries: int = 2,
    shared_out: bool = False,
) -> tuple[Any, Path]:
    """Run ``req`` (a :class:`vpbench.engine.run.RunRequest`) on the cluster at ``address``.

    ``cpus`` and ``gpus`` are the task's Ray resources (``gpus=None``: one GPU for
    ``--device cuda``, or for ``auto`` when the cluster has one). A task whose worker or node
    dies starts again from the last state it sent, up to ``max_retries`` times. Returns the
    record and the local run directory, exactly as ``execute_run`` does. ``shared_out``: ``--out``
    is on a file system the node mounts at the same path, and the node writes it. Ctrl-C raises
    :class:`~vpbench.engine.train.RunInterrupted` after writing the last state to ``--out``.
    """
    from ..engine.run import resolve_request
    from ..engine.train import RunInterrupted
    from ..records import read_record

    if req.on_validation is not None:
        raise ConfigError("a run submitted to a cluster cannot call back into this process (on_validation)")
    if max_retries < 0:
        raise ConfigError(f"--max-retries must be >= 0, got {max_retries}")
    if req.resume and req.out is not None:
        recover_dir(Path(req.out))  # a driver killed between the two renames of a state
    res = resolve_request(req, registry)  # validates flags and config here, before submitting
    out = res.run_dir.root
    shared = None
    if shared_out:
        out.parent.mkdir(parents=True, exist_ok=True)  # the node checks that it sees this folder
        shared = str(out.resolve())
    source = None if res.resumed else (Path(res.config_source) if res.config_source else None)
    config_text = source.read_text(encoding="utf-8") if source is not None else None
    has_state = res.resumed
    data_root = req.data_root or os.environ.get("VPBENCH_DATA")
    sent = replace(req, out=Path(out.name), config_file=None, data_root=Path(data_root).resolve() if data_root else None)
    with ray_session(address):
        import ray
        from ray.exceptions import RayError, RayTaskError

        cluster_gpus = ray.cluster_resources().get("GPU", 0)  # type: ignore[no-untyped-call]
        cpus, gpus, device = _resources(req, cpus, gpus, cluster_gpus)
        sent = replace(sent, device=device)
        task = remote_task(ray, cpus, gpus)
        plugins = tuple(forwarded_plugins(registry))
        echo(f"submitting {res.model} on {res.dataset} to the Ray cluster at {address} ({cpus:g} CPU, {gpus:g} GPU, {device})")
        step = -1  # of the last state received; -1: none (a fresh run starts from its config)
        failures = 0
        host = ""
        # Ctrl-C, SIGTERM and SIGHUP only set ``stop``: looked at between bounded waits, never
        # raised inside Ray; every state is on disk as soon as it arrives
        with sigint_flag(signal.SIGTERM, signal.SIGHUP) as stop:
            while True:
                if shared is not None:  # the node may have written a state whose message never came
                    recover_dir(out)
                    has_state = has_state or (out / "run.yaml").is_file()
                if has_state:  # continue from the last state on disk (or the resumed run's)
                    job = RemoteRun(replace(sent, resume=True, sets=(), seed=None), plugins=plugins, shared=shared)
                    gen = task.remote(job, None if shared else pack_state(out), step)
                else:
                    job = RemoteRun(sent, source.name if source else None, config_text, plugins=plugins, shared=shared)
                    gen = task.remote(job, None)
                try:
                    with user_errors():
                        for message in follow(ray, gen, stop):
                            receive(message, out)
                            kind, n, _, where = message
                            if kind == "state":
                                step, has_state = n, True
                                echo(f"checkpoint at step {n} {'written to --out by' if shared else 'received from'} {where}")
                            else:
                                host = where
                    if host or not stop.is_set():  # finished (even if a signal came after the last message)
                        break
                except RayTaskError:
                    raise
                except RayError as exc:
                    if not stop.is_set():
                        failures += 1
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        if failures > max_retries:
                            raise TrainingError(
                                f"the run's Ray worker was lost {failures} time(s) ({type(exc).__name__}); its last state is in "
                                f"{out if has_state else 'no checkpoint yet'}; continue with vpbench run --resume --out {out} "
                                f"--address {address}{' --shared-out' if shared else ''}, or raise --max-retries"
                            ) from None
                        echo(f"worker lost ({type(exc).__name__}: {reason[:120]}); retry {failures}/{max_retries} from "
                             + (f"step {step}" if step >= 0 else "the start"))
                        continue
                # stopped: end the task (bounded); its last state is already in --out
                cancel_all(ray, [gen])
                if shared is not None:
                    recover_dir(out)
                    has_state = has_state or (out / "run.yaml").is_file()
                if not has_state:
                    echo("interrupted before the first validation; nothing to resume, start the run again")
                    raise KeyboardInterrupt
                raise RunInterrupted(max(step, 0), out)
    echo(f"run finished on {host}; run directory {'written to' if shared else 'copied to'} {out}")
    return read_record(out / "record.json"), out
