"""The one back-off policy: capped exponential growth with one jitter rule, for every retry.

After the n-th failure in a row the *step* is `base · 2^(n-1)`, capped at `cap`; the wait is drawn
uniformly from `[step/2, step]`. Never longer than the step (so the cap a README row promises is a
real ceiling), never under half of it (so a retry does not come back at once), and spread, so many
rows, workers or nodes that failed together do not all come back in the same second.

Used by the processor's transient retries (`processing.retry_base_seconds`, capped at an hour),
the outbox sender's (`notifications.retry_base_seconds` to `retry_max_seconds`) and the IMAP
poller's reconnects (1 s doubling to 2 minutes). The worker-process restart pause of `serve`
(1 s doubling to a minute) uses the step alone: one parent restarts its own children, there is no
crowd to spread, and its log line names the pause it waits.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

JITTER_FLOOR = 0.5  # the shortest wait, as a share of the step


@dataclass(frozen=True)
class BackoffPolicy:
    """`base` seconds after the first failure, doubling with each one after it, never over `cap`."""

    base: float
    cap: float

    def __post_init__(self) -> None:
        if not (self.base >= 0 and self.cap >= 0):  # also refuses NaN
            raise ValueError(f"back-off base and cap must be 0 or more, got {self.base} and {self.cap}")

    def step(self, failures: int) -> float:
        """The longest wait after `failures` failures in a row (1 for the first; 0 counts as 1)."""
        try:
            # ldexp doubles exactly, even from a tiny base; an IMAP outage of days counts thousands
            # of failures, past what a float holds, and that is simply the cap.
            grown = math.ldexp(self.base, max(failures - 1, 0))
        except OverflowError:
            grown = math.inf
        return min(grown, self.cap)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """A wait drawn uniformly from [step · JITTER_FLOOR, step]."""
        step = self.step(failures)
        return (rng or random).uniform(step * JITTER_FLOOR, step)


class FailureStreak:
    """Failures in a row of one long-running loop (an IMAP poller): each asks for the next wait,
    and the first success starts the streak over."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._failures = 0
        self._rng = rng or random.Random()

    @property
    def failing(self) -> bool:
        return self._failures > 0

    def next_delay(self) -> float:
        """Count one more failure and return the wait before the next try."""
        self._failures += 1
        return self.policy.delay(self._failures, self._rng)

    def reset(self) -> None:
        self._failures = 0
