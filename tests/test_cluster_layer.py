"""vpbench.cluster without a cluster: Ctrl-C handling of a waiting driver, bounded calls."""

from __future__ import annotations

import os
import signal
import threading

from vpbench.cluster.interrupt import bounded, sigint_flag


def test_sigint_while_waiting_sets_the_flag_and_the_previous_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with sigint_flag() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT: it must not raise KeyboardInterrupt here
        assert stop.wait(60)  # the handler runs in this (main) thread at the next bytecode
    assert signal.getsignal(signal.SIGINT) is before


def test_a_call_that_hangs_is_left_behind_and_one_that_returns_is_waited_for() -> None:
    release = threading.Event()
    try:
        assert bounded(lambda: release.wait(600), 0.05) is False
    finally:
        release.set()
    assert bounded(lambda: None, 600) is True
    assert bounded(lambda: 1 / 0, 600) is True  # an error on the way out is dropped, not raised
