"""Waiting on the outbox in tests that drive a real desk: "nothing was sent" means something only
once every queued notification has been tried."""

from __future__ import annotations

import time
from typing import Any

from gateway.store import outbox as outbox_store
from gateway.store.db import unit_of_work

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
