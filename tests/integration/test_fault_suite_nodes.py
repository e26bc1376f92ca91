"""The fault suite's second half (the first, and what every scenario asserts: test_fault_suite.py):
SQLite's small disk full under load, a node SIGSTOPped until the other takes it for dead, the relay
answering `451` for a while, and the relay dropping its connection mid-batch. After each: every
mail that got `250` is exactly one ticket, every notification reached the relay once (more only
where §9 or SMTP's own at-least-once allows it), and everything moved again within 60 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.postgres import PrivatePostgres
from tests.faults.scenarios import BY_NAME, Scenario
from tests.faults.suite import check, params, private_postgres

SCENARIOS = [BY_NAME[name] for name in ("disk-full", "stale-heartbeat", "relay-refuses", "relay-drops")]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    yield from private_postgres()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", params(SCENARIOS))
def test_after_a_disk_node_or_relay_fault_every_mail_is_one_ticket_each_notification_went_once_all_moved(
    scenario: Scenario, postgres: PrivatePostgres, tmp_path: Path
) -> None:
    check(scenario, postgres, tmp_path)
