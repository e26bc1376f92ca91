"""The flood limit holds when a sender's mails are processed out of the order they came (SPEC §11).

With several processors (worker processes, nodes) one can take the first part of a burst and
another the rest, and the later part can be processed first. The limit counts tickets by their
mail's time of receipt; counting only the hour before each mail let both parts through (a run saw
31 tickets where the limit is 30). Here the later mails are processed first, on purpose, by a
second processor (store/limits.py, `tickets_opened_by`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.pipeline.processor import Outcome, Processor
from tests.helpers import make_mail, write_config

LIMIT = 5
LOOP = "loop@monitor.example"


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    extra = f"[limits]\nnew_tickets_per_sender_per_hour = {LIMIT}\n"
    built = build_runtime(load_settings(write_config(tmp_path, database_url, extra), environ={}))
    try:
        yield built
    finally:
        built.close()


def alerts(runtime: Runtime, count: int) -> list[int]:
    envelope = Envelope(mail_from=LOOP, rcpt_tos=("support@smilepass.example",), source="smtp")
    # One by one, as they come: each its own time of receipt.
    return [
        runtime.inbox.add(make_mail(f"Alert {n}", f"Disk {n}.", sender=LOOP), envelope)
        for n in range(1, count + 1)
    ]


def test_a_burst_processed_later_part_first_still_opens_no_more_than_the_limit(runtime: Runtime) -> None:
    ids = alerts(runtime, LIMIT + 1)
    first, second = (
        Processor(runtime.deps, worker="test:first"),
        Processor(runtime.deps, worker="test:second"),
    )
    earlier = runtime.inbox.claim(first.worker, ids=ids[:3])  # taken first ...
    later = second.process_ids(ids[3:])  # ... but the later part is processed first
    results = later + first.process_batch(earlier)

    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.TICKET) == LIMIT and outcomes.count(Outcome.FLOOD) == 1
    flood = next(r for r in results if r.outcome is Outcome.FLOOD)
    assert flood.inbox_id == ids[2]  # the last one processed
    assert f"opened {LIMIT} tickets in an hour with a later mail of theirs (limit {LIMIT})" in flood.detail


def test_in_order_the_mail_past_the_limit_is_the_one_held(runtime: Runtime) -> None:
    ids = alerts(runtime, LIMIT + 2)
    results = runtime.processor("test").process_ids(ids)
    assert [r.outcome for r in results] == [Outcome.TICKET] * LIMIT + [Outcome.FLOOD] * 2
    assert all(
        f"opened {LIMIT} tickets in the hour before this mail (limit {LIMIT})" in r.detail
        for r in results[LIMIT:]
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(LIMIT + 2)))
def test_in_whatever_order_a_burst_is_processed_the_limit_holds(
    order: list[int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each mail processed alone, in any order: never more than LIMIT tickets, every other mail
    held as flood (the store plays no part in the rule: SQLite)."""
    workdir = tmp_path_factory.mktemp("flood")
    extra = f"[limits]\nnew_tickets_per_sender_per_hour = {LIMIT}\n"
    built = build_runtime(
        load_settings(write_config(workdir, f"sqlite:///{workdir / 'tg.db'}", extra), environ={})
    )
    try:
        ids = alerts(built, LIMIT + 2)
        processor = built.processor("test")
        outcomes = [processor.process_ids([ids[index]])[0].outcome for index in order]
    finally:
        built.close()
    assert outcomes.count(Outcome.TICKET) == LIMIT
    assert outcomes.count(Outcome.FLOOD) == 2
    assert outcomes[:LIMIT] == [Outcome.TICKET] * LIMIT  # the first ones processed open theirs
