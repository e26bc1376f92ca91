"""Waits for tests that drive a real desk (`serve` plus a database read from the test): the inbox
settled, so outcomes can be read; the outbox settled, so "nothing was sent" means something."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.store import outbox as outbox_store
from gateway.store.db import unit_of_work
from gateway.store.inbox_outcomes import list_entries

SETTLED = ("sent", "failed", "dead")


def wait_until_outbox_settled(sessions: Any, timeout: float = 30) -> None:
    """Return once no outbox row is waiting to be sent; fail the test with the states after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with unit_of_work(sessions) as session:
            states = [row.status for row in outbox_store.listing(session)]
        if all(state in SETTLED for state in states):
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


def wait_until_inbox_settled(
    sessions: Any, count: int, *, output: Callable[[], str], timeout: float = 60
) -> None:
    """Return once `count` mails are in the inbox and none is pending; fail with the outcomes and
    `output()` (the daemon's log) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with unit_of_work(sessions) as session:
            outcomes = [entry.outcome for entry in list_entries(session)]
        if len(outcomes) >= count and "pending" not in outcomes:
            return
        assert time.monotonic() < deadline, f"still pending: {outcomes}\n{output()}"
        time.sleep(0.2)


def wait_for(condition: Callable[[], object], timeout: float = 60, what: str = "") -> object:
    """`condition()`'s first true value, asked every 0.1 s; fail the test naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s: {what}")
