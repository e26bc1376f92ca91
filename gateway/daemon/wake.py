"""Cross-process signals between `serve` and its worker processes that a killed process cannot jam.

multiprocessing's Event is built on a Condition whose `set()` waits until every process sleeping
in `wait()` has acknowledged the wake-up. A worker killed while it waits (SIGKILL, the kernel's
OOM killer) never acknowledges, and every later `set()` blocks for good: intake's commit would
never get its `250` (it wakes the workers), and shutdown would hang. Measured: after a waiter is
SIGKILLed, `Event.set()` in the daemon does not return. These two replace it:

- `WakeSignal`: a counting semaphore. `set()` tops the tokens up to one per waiting thread (it
  never waits for anyone), so a commit wakes every idle processor thread, as the Event did; each
  `wait()` takes one. Tokens left while the threads were busy cost each at most one spare look
  at an empty queue.
- `StopFlag`: a shared byte, polled. The worker's main loop looks at it twice a second anyway.
"""

from __future__ import annotations

import time
from multiprocessing.context import SpawnContext
from typing import Any

POLL_SECONDS = 0.05


class WakeSignal:
    """'There may be mail to process': set by intake, waited on by processor threads in any process."""

    def __init__(self, context: SpawnContext, *, waiters: int) -> None:
        self._tokens = context.Semaphore(0)
        self._waiters = max(1, waiters)

    def set(self) -> None:
        try:
            missing = self._waiters - self._tokens.get_value()
        except NotImplementedError:  # macOS has no sem_getvalue: one token per set() there
            missing = 1
        for _ in range(missing):  # a race with another set() leaves a token or two more: harmless
            self._tokens.release()

    def wait(self, timeout: float | None = None) -> bool:
        return self._tokens.acquire(timeout=timeout)

    def clear(self) -> None:
        """Nothing to do: each `wait` took its own token."""


class StopFlag:
    """'Finish and exit': set once by the daemon, read by its worker processes."""

    def __init__(self, context: SpawnContext) -> None:
        self._flag: Any = context.RawValue("b", 0)

    def set(self) -> None:
        self._flag.value = 1

    def is_set(self) -> bool:
        return bool(self._flag.value)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(POLL_SECONDS, remaining))
        return True
