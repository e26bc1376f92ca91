"""The daemon's signals to its worker processes survive a worker killed while it waits on them
(multiprocessing.Event does not: its set() then blocks for good)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

from gateway.daemon.wake import StopFlag, WakeSignal


def _wait_forever(wake: WakeSignal, stop: StopFlag) -> None:
    while not stop.wait(0.2):
        wake.wait(0.2)


def _returns_within(action, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_set_returns_after_a_waiting_process_was_killed() -> None:
    context = multiprocessing.get_context("spawn")
    wake, stop = WakeSignal(context, waiters=2), StopFlag(context)
    child = context.Process(target=_wait_forever, args=(wake, stop))
    child.start()
    time.sleep(1.0)  # it is waiting on both now
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join()
    assert _returns_within(wake.set, 5)
    assert _returns_within(stop.set, 5)
    assert stop.is_set() and stop.wait(0)
    assert wake.wait(1)  # the token set() left is there for the next waiter


def test_a_set_wakes_each_waiter_once_however_often_it_was_called() -> None:
    wake = WakeSignal(multiprocessing.get_context("spawn"), waiters=3)
    assert not wake.wait(0.01)
    for _ in range(1000):
        wake.set()
    taken = 0
    while wake.wait(0):
        taken += 1
    assert taken == 3
