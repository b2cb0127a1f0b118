"""Ctrl-C while a driver waits on Ray: a flag checked between bounded waits, never an
exception raised inside a Ray call.

A ``KeyboardInterrupt`` raised in the middle of ``ray.wait``, ``ray.get`` or ``next()`` on a
streaming generator can leave Ray's client state half-updated, after which ``ray.cancel`` or
``ray.shutdown`` may block. So while a driver waits, SIGINT only sets an event
(:func:`sigint_flag`); the waiting loop looks at it between waits of at most :data:`POLL_S`
seconds, cancels what runs and returns cleanly. Cancelling and shutting down are bounded
(:func:`bounded`): a Ray that does not answer cannot keep the driver from exiting.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["POLL_S", "CANCEL_TIMEOUT_S", "SHUTDOWN_TIMEOUT_S", "sigint_flag", "bounded", "cancel_all", "gather"]

#: longest single wait on Ray before the driver looks at the Ctrl-C flag again (seconds)
POLL_S = 0.5
#: how long cancelling the running tasks may take after Ctrl-C (seconds)
CANCEL_TIMEOUT_S = 30.0
#: how long disconnecting from Ray may take (seconds)
SHUTDOWN_TIMEOUT_S = 60.0


@contextmanager
def sigint_flag(*more: signal.Signals) -> Iterator[threading.Event]:
    """While the block runs, SIGINT (and the signals in ``more``, e.g. SIGTERM) set the event
    it yields instead of raising ``KeyboardInterrupt`` (or ending the process); the previous
    handlers are put back afterwards. Signal handlers belong to the main thread: elsewhere the
    event is yielded but no signal sets it."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, *more)}
    try:
        yield event
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


def bounded(fn: Callable[[], object], timeout: float) -> bool:
    """Call ``fn`` in a daemon thread and wait for it at most ``timeout`` seconds.

    True when it returned (or raised: its error is dropped, the caller is on its way out);
    False when it still runs, so the caller goes on without it."""
    done = threading.Event()

    def body() -> None:
        try:
            fn()
        except BaseException:  # noqa: BLE001 - best effort on the way out; nothing to report it to
            pass
        finally:
            done.set()

    threading.Thread(target=body, name="vpbench-bounded", daemon=True).start()
    return done.wait(timeout)


def cancel_all(ray: Any, refs: Sequence[Any]) -> bool:
    """Force-cancel the tasks behind ``refs`` (killing their workers), within :data:`CANCEL_TIMEOUT_S`."""

    def cancel() -> None:
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a task that already ended cannot be cancelled
                pass

    return bounded(cancel, CANCEL_TIMEOUT_S)


def gather(ray: Any, refs: Sequence[Any]) -> list[Any]:
    """``ray.get(refs)`` that Ctrl-C can interrupt cleanly: it waits in steps of :data:`POLL_S`
    and on SIGINT cancels the tasks, then raises ``KeyboardInterrupt`` outside any Ray call."""
    refs = list(refs)
    with sigint_flag() as stop:
        waiting = list(refs)
        while waiting and not stop.is_set():
            _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=POLL_S)
        if stop.is_set():
            cancel_all(ray, refs)
            raise KeyboardInterrupt
    return list(ray.get(refs))
