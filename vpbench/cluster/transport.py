"""One run on a cluster node, its state brought back to the driver: the one transport that
``vpbench bench`` and ``vpbench run --address`` share.

A run is a Ray *streaming generator* task (:func:`stream_run`). It trains in a thread and
yields a message at every validation pass, ``("state", step, tar, where)`` with the run's
resumable state (``run.yaml`` and ``checkpoints/``), and at the end ``("done", steps, tar,
where)`` with the finished run directory. Ray keeps at most :data:`BACKPRESSURE` unread
messages of one run; the driver (:func:`receive`) takes one message at a time and writes it
to the run's folder at once, with an atomic replace: a state is never held only in the
driver's memory, so a driver killed by any signal leaves the last state it received on disk,
a run directory that ``--resume`` continues. Nothing is sent back twice: a run restarted from
a state does not report that state's step again.

With ``--shared-out`` (:mod:`vpbench.cluster.shared`, :attr:`RemoteRun.shared`) the node writes
each state and the finished directory into the run's folder on the shared ``--out`` itself, with
the same atomic replace, and the messages carry no bytes (``payload`` None): the driver only
learns the step and the node. :data:`traffic` counts what the driver received.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .interrupt import POLL_S
from .pack import pack_dir, pack_state, unpack_dir
from .shared import check_reachable, load_state, write_done, write_state

__all__ = ["BACKPRESSURE", "Traffic", "traffic", "RemoteRun", "stream_run", "remote_task", "receive", "next_message", "follow"]

#: unread messages one run may have waiting for the driver before its training thread blocks
BACKPRESSURE = 2

Message = tuple[str, int, Any, str]


@dataclass(frozen=True)
class RemoteRun:
    """What a node needs to run one ``vpbench run`` (pickled to the worker)."""

    #: a :class:`vpbench.engine.run.RunRequest`; its ``out`` is only a folder name
    request: Any
    #: the config file's name and text, for a run that starts from its config
    config_name: str | None = None
    config_text: str | None = None
    #: plugin objects registered besides the installed entry points
    plugins: tuple[object, ...] = ()
    #: ``(dataset, overrides, data_root)`` to prepare on the node first (a node that joined late)
    prepare: tuple[str, dict[str, Any], str | None] | None = None
    #: ``--shared-out``: the run's folder on storage every node mounts at this (absolute) path;
    #: the node reads a resumed state from there and writes its states and result there
    shared: str | None = None
    #: with ``shared``: a JSON file (step, node) written inside each state the node writes
    state_note: str | None = None


@dataclass
class Traffic:
    """Messages the driver received and the state bytes they carried (this process)."""

    messages: int = 0
    bytes: int = 0


#: what :func:`receive` has taken in so far
traffic = Traffic()


def stream_run(job: RemoteRun, state: bytes | None, sent_step: int = -1) -> Iterator[Message]:
    """Body of the Ray task: train ``job`` (from ``state`` when given) and yield its messages.

    States are yielded for validation passes after ``sent_step`` (a resumed run validates its
    checkpoint's step again, which the driver already holds)."""
    from ..engine.run import execute_run
    from ..plugins import get_registry

    where = f"{socket.gethostname()}, worker pid {os.getpid()}"
    shared = Path(job.shared) if job.shared is not None else None
    if shared is not None:
        check_reachable(shared, where)
    registry = get_registry(list(job.plugins))
    if job.prepare is not None:
        from ..config import build_run_config
        from ..data.root import resolve_data_root
        from .data import prepare_data

        dataset, overrides, data_root = job.prepare
        cfg = build_run_config(overrides)
        prepare_data(registry, dataset, cfg.dataset, resolve_data_root(data_root), progress=False)
    work = Path(tempfile.mkdtemp(prefix="vpbench-remote-"))
    try:
        out = work / Path(job.request.out).name
        config_file = None
        if job.config_text is not None:
            config_file = work / "config" / (job.config_name or "config.yaml")
            config_file.parent.mkdir()
            config_file.write_text(job.config_text, encoding="utf-8")
        resume = state is not None or (shared is not None and bool(job.request.resume))
        if shared is not None and resume:
            load_state(shared, out)
        elif state is not None:
            unpack_dir(state, out)
        # bounded: the training thread waits while BACKPRESSURE messages are unread
        messages: queue.Queue[tuple[str, int, Any]] = queue.Queue(maxsize=BACKPRESSURE)

        def on_validation(step: int, values: dict[str, float], ckpt_dir: Path) -> None:
            if step > sent_step:  # last.pt was saved for this step
                if shared is not None:
                    write_state(out, shared, step, where, job.state_note)
                    messages.put(("state", step, None))
                else:
                    messages.put(("state", step, pack_state(out)))

        def body() -> None:
            try:
                local = replace(job.request, out=out, config_file=config_file, resume=resume, progress=False, on_validation=on_validation)
                record, run_dir = execute_run(local, registry, echo=print)
                if shared is not None:
                    write_done(run_dir, shared)
                    messages.put(("done", record.train.steps_done, None))
                else:
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


def remote_task(ray: Any, cpus: float, gpus: float) -> Any:
    """:func:`stream_run` as a Ray task with the run's resources (Ray does not retry it: the
    driver restarts a lost run from the last state it received)."""
    options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": 0, "num_returns": "streaming"}
    options["_generator_backpressure_num_objects"] = BACKPRESSURE
    return ray.remote(**options)(stream_run)


def next_message(ray: Any, gen: Any) -> Message | None:
    """The next message of a run whose generator ``ray.wait`` found ready; None at its end.
    Raises what the task raised (a ``RayTaskError``) or a ``RayError`` when its worker died."""
    try:
        ref = next(gen)
    except StopIteration:
        return None
    message: Message = ray.get(ref)
    return message


def receive(message: Message, dest: Path, on_state: Callable[[Path, int, str], None] | None = None) -> None:
    """Write a message to the run's folder ``dest`` at once (atomic replace); ``on_state`` is
    called after a state was written. A message of a ``--shared-out`` run carries no bytes: its
    node wrote ``dest`` already, and nothing is done here but counting it."""
    kind, step, payload, where = message
    traffic.messages += 1
    if payload is None:
        return
    traffic.bytes += len(payload)
    unpack_dir(payload, dest, replace=True)
    if kind == "state" and on_state is not None:
        on_state(dest, step, where)


def follow(ray: Any, gen: Any, stop: threading.Event) -> Iterator[Message]:
    """One run's messages as they come, waiting at most ``POLL_S`` at a time; returns early
    once ``stop`` (Ctrl-C) is set."""
    while not stop.is_set():
        ready, _ = ray.wait([gen], timeout=POLL_S)
        if not ready:
            continue
        message = next_message(ray, gen)
        if message is None:
            return
        yield message
        if message[0] == "done":
            return
