"""The fault suite (SPEC §15, §9): real `ticketgate serve` node(s) take mail by SMTP while a real
fault hits them (tests/faults/scenarios.py: the proxy cutting, delaying and blackholing
PostgreSQL; a private PostgreSQL restarted; SQLite's small disk full; a node SIGSTOPped until its
heartbeat is stale; the relay refusing, then dropping mid-batch). After each, what a user and an
operator observe: every mail that got `250` is exactly one ticket (`tickets list --json`), every
notification reached the relay exactly once (by Message-ID; more only where §9 allows it: a node
taken for dead, or a connection the relay dropped after taking the mail), and within 60 s of the
fault's end nothing is pending in the inbox and nothing is due in the outbox.

This file has the database's faults; test_fault_suite_nodes.py the disk's, a node's and the
relay's (two files, so CI runs them on both cores). bench/fault_run.py repeats the same scenarios
for longer, with more mail (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.postgres import PrivatePostgres
from tests.faults.scenarios import BY_NAME, Scenario
from tests.faults.suite import check, params, private_postgres

SCENARIOS = [BY_NAME[name] for name in ("proxy-cut", "proxy-delay", "proxy-blackhole", "postgres-restart")]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    yield from private_postgres()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", params(SCENARIOS))
def test_after_a_database_fault_every_mail_is_one_ticket_every_notification_went_once_all_moved_within_60s(
    scenario: Scenario, postgres: PrivatePostgres, tmp_path: Path
) -> None:
    check(scenario, postgres, tmp_path)
