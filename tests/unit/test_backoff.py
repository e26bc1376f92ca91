"""The one back-off policy (gateway/backoff.py): bounds, growth, cap and the jitter range, and the
base and cap each of its users keeps (processor, outbox sender, IMAP poller, worker restarts)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.backoff import JITTER_FLOOR, BackoffPolicy, FailureStreak
from gateway.daemon.workers import RESTART_BACKOFF
from gateway.intake.imap import PollerTiming
from gateway.notify.sender import backoff as notification_backoff
from gateway.pipeline.processor import RETRY_CAP_SECONDS
from gateway.pipeline.processor import _backoff as processing_backoff

seconds = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
failures = st.integers(min_value=0, max_value=10**30)
seeds = st.integers(min_value=0, max_value=2**32)


@given(seconds, seconds, failures, seeds)
def test_a_wait_lies_between_half_the_step_and_the_step_which_never_passes_the_cap(
    base: float, cap: float, failed: int, seed: int
) -> None:
    policy = BackoffPolicy(base, cap)
    step = policy.step(failed)
    assert min(base, cap) <= step <= cap
    wait = policy.delay(failed, random.Random(seed))
    assert step * JITTER_FLOOR <= wait <= step


@given(seconds, seconds, st.integers(min_value=1, max_value=3000))
def test_each_failure_doubles_the_step_until_the_cap(base: float, cap: float, failed: int) -> None:
    policy = BackoffPolicy(base, cap)
    assert policy.step(1) == min(base, cap)
    assert policy.step(0) == policy.step(1)
    assert policy.step(failed + 1) == min(2 * policy.step(failed), cap)


@given(
    st.floats(min_value=1e-3, max_value=1e4),
    st.floats(min_value=1e-3, max_value=1e6),
    st.integers(min_value=0, max_value=100),
)
def test_the_cap_is_reached_and_held(base: float, cap: float, beyond: int) -> None:
    policy = BackoffPolicy(base, cap)
    reached = 1 + max(0, math.ceil(math.log2(cap / base)))
    assert policy.step(reached + beyond) == cap
    if reached > 1:
        assert policy.step(reached - 1) < cap


@given(st.floats(min_value=1e-3, max_value=1e6), seeds)
def test_the_jitter_spreads_waits_over_the_whole_range(step: float, seed: int) -> None:
    rng = random.Random(seed)
    policy = BackoffPolicy(step, step)
    waits = [policy.delay(3, rng) for _ in range(300)]
    assert min(waits) >= step * JITTER_FLOOR and max(waits) <= step
    # 300 uniform draws all in one 60% slice of the range: about 0.6**300, never in practice.
    assert min(waits) < step * 0.6 and max(waits) > step * 0.9


def test_a_streak_grows_with_each_failure_starts_over_after_a_success_and_never_overflows() -> None:
    streak = FailureStreak(BackoffPolicy(1.0, 120.0), random.Random(7))
    assert not streak.failing
    first = streak.next_delay()
    assert streak.failing and 0.5 <= first <= 1.0
    assert 1.0 <= streak.next_delay() <= 2.0
    waits = [streak.next_delay() for _ in range(2000)]  # an IMAP outage of days: no OverflowError
    assert all(60.0 <= wait <= 120.0 for wait in waits[10:])
    streak.reset()
    assert not streak.failing
    assert 0.5 <= streak.next_delay() <= 1.0


@pytest.mark.parametrize(("base", "cap"), [(-1.0, 10.0), (1.0, -1.0), (math.nan, 10.0), (1.0, math.nan)])
def test_a_negative_or_undefined_base_or_cap_is_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="back-off base and cap must be 0 or more"):
        BackoffPolicy(base, cap)


def test_each_user_keeps_its_own_base_and_cap() -> None:
    rng = random.Random(11)
    # The outbox sender: notifications.retry_base_seconds doubling to retry_max_seconds.
    assert 30.0 <= notification_backoff(1, base=60, cap=3600, rng=rng).total_seconds() <= 60.0
    assert 1800.0 <= notification_backoff(30, base=60, cap=3600, rng=rng).total_seconds() <= 3600.0
    # The processor: processing.retry_base_seconds doubling to an hour.
    assert RETRY_CAP_SECONDS == 3600.0
    assert 15.0 <= processing_backoff(1, 30.0).total_seconds() <= 30.0
    assert 1800.0 <= processing_backoff(40, 30.0).total_seconds() <= 3600.0
    # The IMAP poller: 1 s doubling to 2 minutes (docs/admin/imap.md, "How mail is taken in").
    timing = PollerTiming()
    assert (timing.reconnect_base, timing.reconnect_cap) == (1.0, 120.0)
    # Worker restarts: 1 s doubling up to a minute, no jitter (`processing.processes`, docs/admin/).
    assert [RESTART_BACKOFF.step(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
