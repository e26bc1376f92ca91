"""The fault suite (SPEC §15, §9): real `ticketgate serve` node(s) take mail by SMTP while a real
fault hits them (tests/faults/scenarios.py: the proxy cutting, delaying and blackholing
PostgreSQL; a private PostgreSQL restarted; SQLite's small disk full; a node SIGSTOPped until its
heartbeat is stale; the relay refusing, then dropping mid-batch). After each, what a user and an
operator observe: every mail that got `250` is exactly one ticket (`tickets list --json`), every
notification reached the relay exactly once (by Message-ID; more only where §9 allows it: a node
taken for dead, or a connection the relay dropped after taking the mail), and within 60 s of the
fault's end nothing is pending in the inbox and nothing is due in the outbox.

bench/fault_run.py repeats the same scenarios for longer, with more mail (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_component
from tests.faults.postgres import PrivatePostgres
from tests.faults.scenarios import SCENARIOS, Scenario, run_scenario

MAILS = 24
DRAIN_LIMIT = 60.0  # SPEC §15: moving again within 60 s


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL for the module (restarted by one scenario; disturbs no other test)."""
    try:
        server = PrivatePostgres()
    except FileNotFoundError as exc:
        missing_component(str(exc))
    with server:
        yield server


# Found by this suite and not fixed here (docs/operations/delivery-promises.md, "The fault suite"):
# a query whose bytes the blackhole swallowed is never answered, and the pool's pre-ping
# (`SELECT 1`) on such a connection waits forever; the inbox writer and the outbox sender stay
# stuck there long after the route is back, and `serve` does not stop on SIGTERM. Strict: it
# turns into a failure the day it passes, so the marker goes then.
KNOWN_BROKEN = {
    "proxy-blackhole": "a connection whose query was swallowed hangs its thread for good: no client-side"
    " bound on a database round trip (pool_pre_ping's SELECT 1 waits forever)",
}


def with_marks(scenario: Scenario) -> object:
    reason = KNOWN_BROKEN.get(scenario.name)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(scenario, marks=marks, id=scenario.name)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", [with_marks(s) for s in SCENARIOS])
def test_after_the_fault_every_mail_is_one_ticket_every_notification_went_once_and_all_moved_within_60s(
    scenario: Scenario, postgres: PrivatePostgres, tmp_path: Path
) -> None:
    try:
        outcome = run_scenario(scenario, tmp_path, postgres=postgres, mails=MAILS, drain_limit=DRAIN_LIMIT)
    except PermissionError as exc:  # the small disk needs root or CAP_SYS_ADMIN
        missing_component(str(exc))
    print(outcome.line())
    assert outcome.problems(DRAIN_LIMIT) == [], f"{scenario.name} ({scenario.why}): {outcome.line()}"
