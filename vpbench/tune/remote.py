"""``vpbench run --address``: one run as a Ray task on a cluster, its directory brought back.

The request is validated here first (bad keys fail before anything is sent). The config
file travels as text; a resumed run's directory travels as a tar. The task asks Ray for
the CPUs and GPUs given (``--cpus``, ``--gpus``, ``--device``) and streams the run's
resumable state (``run.yaml`` and ``checkpoints/``) back to the driver at every validation
pass. So nothing is lost when the worker dies: the driver starts the task again from the
last state it received (``--max-retries`` times); and Ctrl-C on the driver leaves that
state in ``--out``, a run directory ``vpbench run --resume --out`` continues. The finished
run directory comes back as a tar and lands at the same ``--out`` a local run would use.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cluster.interrupt import POLL_S, cancel_all, sigint_flag
from ..errors import ConfigError, TrainingError
from .cluster import forwarded_plugins, ray_session, user_errors
from .pack import pack_dir, pack_state, unpack_dir

__all__ = ["submit_run"]

Echo = Callable[[str], None]


def _remote_run(
    req: Any, config_name: str | None, config_text: str | None, state: bytes | None, plugins: list[object], sent_step: int = -1
) -> Iterator[tuple[str, int, Any, str]]:
    """Body of the Ray task (a streaming generator): yields ``("state", step, tar, where)`` at
    every validation pass after ``sent_step`` (a resumed run validates its checkpoint's step
    again) and ``("done", steps, tar, where)`` with the finished run directory."""
    from ..engine.run import execute_run
    from ..plugins import get_registry

    where = f"{socket.gethostname()}, worker pid {os.getpid()}"
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
        messages: queue.Queue[tuple[str, int, Any]] = queue.Queue()

        def on_validation(step: int, values: dict[str, float], ckpt_dir: Path) -> None:
            if step > sent_step:
                messages.put(("state", step, pack_state(out)))  # last.pt was saved for this step

        def body() -> None:
            try:
                local = replace(req, out=out, config_file=config_file, progress=False, on_validation=on_validation)
                record, run_dir = execute_run(local, get_registry(plugins), echo=print)
                messages.put(("done", record.train.steps_done, pack_dir(run_dir)))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the task's own thread below
                messages.put(("error", 0, exc))

        # the run trains in a thread so that this generator can hand each state over as it comes
        threading.Thread(target=body, daemon=True).start()
        while True:
            kind, step, payload = messages.get()
            if kind == "error":
                raise payload
            yield kind, step, payload, where
            if kind == "done":
                return
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
) -> tuple[Any, Path]:
    """Run ``req`` (a :class:`vpbench.engine.run.RunRequest`) on the cluster at ``address``.

    ``cpus`` and ``gpus`` are the task's Ray resources (``gpus=None``: one GPU for
    ``--device cuda``, or for ``auto`` when the cluster has one). A task whose worker or node
    dies starts again from the last state it sent, up to ``max_retries`` times. Returns the
    record and the local run directory, exactly as ``execute_run`` does; Ctrl-C raises
    :class:`~vpbench.engine.train.RunInterrupted` after writing the last state to ``--out``.
    """
    from ..engine.run import resolve_request
    from ..engine.train import RunInterrupted
    from ..records import read_record

    if req.on_validation is not None:
        raise ConfigError("a run submitted to a cluster cannot call back into this process (on_validation)")
    if max_retries < 0:
        raise ConfigError(f"--max-retries must be >= 0, got {max_retries}")
    res = resolve_request(req, registry)  # validates flags and config here, before submitting
    out = res.run_dir.root
    source = None if res.resumed else (Path(res.config_source) if res.config_source else None)
    config_text = source.read_text(encoding="utf-8") if source is not None else None
    state = pack_state(out) if res.resumed else None
    data_root = req.data_root or os.environ.get("VPBENCH_DATA")
    sent = replace(req, out=Path(out.name), config_file=None, data_root=Path(data_root) if data_root else None)
    with ray_session(address):
        import ray
        from ray.exceptions import RayError, RayTaskError

        cluster_gpus = ray.cluster_resources().get("GPU", 0)  # type: ignore[no-untyped-call]
        cpus, gpus, device = _resources(req, cpus, gpus, cluster_gpus)
        sent = replace(sent, device=device)
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0, num_returns="streaming")(_remote_run)
        plugins = forwarded_plugins(registry)
        echo(f"submitting {res.model} on {res.dataset} to the Ray cluster at {address} ({cpus:g} CPU, {gpus:g} GPU, {device})")
        step = -1  # of the last state received; -1: none (a fresh run starts from its config)
        failures = 0
        packed: bytes = b""
        host = ""
        # Ctrl-C only sets ``stop``: it is looked at between bounded waits, never raised inside Ray
        with sigint_flag() as stop:
            while True:
                args: tuple[Any, ...]
                if state is not None:  # continue from the last state (or the resumed run's)
                    args = (replace(sent, resume=True, sets=(), seed=None), None, None, state, plugins, step)
                else:
                    args = (sent, source.name if source else None, config_text, None, plugins)
                gen = task.remote(*args)
                try:
                    with user_errors():
                        for kind, n, payload, where in _follow(ray, gen, stop):
                            if kind == "state":
                                step, state = n, payload
                                echo(f"checkpoint at step {n} received from {where}")
                            else:
                                packed, host = payload, where
                    if host or not stop.is_set():  # finished (even if Ctrl-C came after the last message)
                        break
                except RayTaskError:
                    raise
                except RayError as exc:
                    if not stop.is_set():
                        failures += 1
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        if failures > max_retries:
                            if state is not None:
                                unpack_dir(state, out, replace=True)
                            raise TrainingError(
                                f"the run's Ray worker was lost {failures} time(s) ({type(exc).__name__}); its last state is in "
                                f"{out if state is not None else 'no checkpoint yet'}; continue with vpbench run --resume --out {out} "
                                f"[--address ...] or raise --max-retries"
                            ) from None
                        echo(f"worker lost ({type(exc).__name__}: {reason[:120]}); retry {failures}/{max_retries} from "
                             + (f"step {step}" if step >= 0 else "the start"))
                        continue
                # Ctrl-C: stop the task (bounded), keep its last state as a resumable run directory
                cancel_all(ray, [gen])
                if state is None:
                    echo("interrupted before the first validation; nothing to resume, start the run again")
                    raise KeyboardInterrupt
                unpack_dir(state, out, replace=True)
                raise RunInterrupted(max(step, 0), out)
    unpack_dir(packed, out, replace=res.resumed)
    echo(f"run finished on {host}; run directory copied to {out}")
    return read_record(out / "record.json"), out


def _follow(ray: Any, gen: Any, stop: threading.Event) -> Iterator[tuple[str, int, Any, str]]:
    """The task's messages as they come, waiting at most ``POLL_S`` at a time; returns early
    once ``stop`` (Ctrl-C) is set."""
    while not stop.is_set():
        ready, _ = ray.wait([gen], timeout=POLL_S)
        if not ready:
            continue
        try:
            ref = next(gen)
        except StopIteration:
            return
        message = ray.get(ref)
        yield message
        if message[0] == "done":
            return
