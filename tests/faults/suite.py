"""What the two halves of the fault suite share (tests/integration/test_fault_suite*.py): the private
PostgreSQL they run on, the scenarios known to break a promise, and the check itself. Two files so
that CI's `--dist loadfile` runs the halves on both cores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_component
from tests.faults.postgres import PrivatePostgres
from tests.faults.scenarios import Scenario, run_scenario

MAILS = 24
DRAIN_LIMIT = 60.0  # SPEC §15: moving again within 60 s

# Scenarios known to break a promise, each strictly expected to fail (so the marker goes the day
# it passes). None today: the blackhole was, until the daemon's waits on PostgreSQL got their
# bound (`database.reply_timeout`, gateway/store/pg_connection.py).
KNOWN_BROKEN: dict[str, str] = {}


def private_postgres() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL for a module (restarted by one scenario; disturbs no other test)."""
    try:
        server = PrivatePostgres()
    except FileNotFoundError as exc:
        missing_component(str(exc))
    with server:
        yield server


def params(scenarios: list[Scenario]) -> list[object]:
    """The scenarios as pytest parameters, the known-broken ones strictly expected to fail."""
    out: list[object] = []
    for scenario in scenarios:
        reason = KNOWN_BROKEN.get(scenario.name)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        out.append(pytest.param(scenario, marks=marks, id=scenario.name))
    return out


def check(scenario: Scenario, postgres: PrivatePostgres, folder: Path) -> None:
    """Run the scenario once and assert every promise on what was observed."""
    try:
        outcome = run_scenario(scenario, folder, postgres=postgres, mails=MAILS, drain_limit=DRAIN_LIMIT)
    except PermissionError as exc:  # the small disk needs root or CAP_SYS_ADMIN
        missing_component(str(exc))
    print(outcome.line())
    assert outcome.problems(DRAIN_LIMIT) == [], f"{scenario.name} ({scenario.why}): {outcome.line()}"
