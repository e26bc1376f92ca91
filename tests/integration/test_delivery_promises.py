"""SPEC §15's delivery promises under faults, with the real Sender and Processor, the real SMTP sink,
and a store that really fails: PostgreSQL behind the fault proxy (tests/faults/proxy.py), cut; or
SQLite whose write lock another connection holds past the busy timeout.

- A node whose own heartbeat went stale sends nothing twice: it claims nothing until it beats again.
- A send whose recording fails is recorded once the store answers, and never sent again, even
  after its claim's lease has run out.
- Claims a failed transaction left are given back as soon as the store answers, not after a lease.

The whole daemon through a database cut: tests/integration/test_database_cut.py.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import RelayTarget, load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.notify.relay import SmtpRelay
from gateway.notify.sender import CLAIM_LEASE, Sender
from gateway.pipeline.processor import STAGES, Outcome, Processor
from gateway.pipeline.stage_values import MailRun
from gateway.store import nodes
from gateway.store.db import make_engine, make_session_factory, unit_of_work
from gateway.store.inbox import DEFAULT_LEASE, InboxStore
from gateway.store.models import Node, utcnow
from tests.faults.proxy import FaultProxy
from tests.helpers import make_mail
from tests.integration.smtp_sink import SmtpSink
from tests.integration.test_notifications import Clock, config_with, deliver, outbox_rows

SUPPORT = "support@smilepass.example"


@dataclass
class FaultyStore:
    """The database as the code under test reaches it (`engine`), which the test can take away
    (`away`) and give back (`back`); the test's own look goes around the fault."""

    engine: Engine
    away: Callable[[], None]
    back: Callable[[], None]

    @property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    built = build_runtime(load_settings(config_with(tmp_path, database_url)))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def faulty(database_url: str) -> Iterator[FaultyStore]:
    """PostgreSQL through the fault proxy (away: every connection cut and refused), or SQLite with
    a short busy timeout (away: another connection holds the write lock)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        with FaultProxy(url.port or 5432, target_host=url.host or "127.0.0.1") as proxy:
            through = url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
            engine = make_engine(through)
            yield FaultyStore(engine, proxy.cut, proxy.pass_through)
            engine.dispose()
        return
    holder = sqlite3.connect(url.database or "", isolation_level=None, check_same_thread=False)

    def take_lock() -> None:
        holder.execute("BEGIN IMMEDIATE")

    def give_lock() -> None:
        holder.execute("ROLLBACK")

    engine = make_engine(database_url, sqlite_busy_timeout=0.3)
    yield FaultyStore(engine, take_lock, give_lock)
    engine.dispose()
    holder.close()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def sender(sessions: sessionmaker[Session], runtime: Runtime, sink: SmtpSink, **kwargs: object) -> Sender:
    return Sender(
        sessions,
        SmtpRelay(RelayTarget("smtp", host=sink.host, port=sink.port)),
        runtime.settings.notifications,
        worker="promises-sender",
        rng=random.Random(5),
        **kwargs,  # type: ignore[arg-type]
    )


def queue(runtime: Runtime, customers: int) -> None:
    """Two notifications per customer: the acknowledgement and the note to triage."""
    for n in range(customers):
        deliver(runtime, make_mail(sender=f"c{n}@customer.example", subject=f"Problem {n}"))


def deliveries(sink: SmtpSink) -> Counter[str]:
    """How many times the sink took each notification (by its Message-ID)."""
    return Counter(str(mail.message["Message-ID"]) for mail in sink.captured)


def make_stale(runtime: Runtime, node_id: int, seconds: float) -> None:
    with unit_of_work(runtime.inbox.sessions) as session:
        session.execute(
            update(Node).where(Node.id == node_id).values(last_beat=utcnow() - timedelta(seconds=seconds))
        )


# --- a node whose own heartbeat is stale -------------------------------------------------------


def test_a_node_whose_own_heartbeat_is_stale_claims_nothing_until_it_beats_and_sends_each_once(
    runtime: Runtime, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """Measured before: its own rows looked orphaned to it, so it claimed and sent them again on
    every round until they were recorded (5 notifications became 16 deliveries)."""
    queue(runtime, 3)
    me = nodes.register(runtime.engine, name="slow-disk", host="h", pid=1)
    make_stale(runtime, me, nodes.DEAD_AFTER.total_seconds() + 5)
    caplog.set_level(logging.INFO, logger="gateway.notify.sender")
    node_sender = sender(runtime.inbox.sessions, runtime, sink, node_id=me)

    assert node_sender.send_due() == [] and node_sender.send_due() == []
    assert sink.captured == []
    stale_lines = [r for r in caplog.records if "heartbeat is stale" in r.getMessage()]
    assert len(stale_lines) == 1 and stale_lines[0].levelno == logging.WARNING  # said once

    nodes.beat(runtime.engine, me)
    results = node_sender.send_due()
    assert [r.status for r in results] == ["sent"] * 6
    assert sorted(deliveries(sink).values()) == [1] * 6
    assert sum("fresh again" in r.getMessage() for r in caplog.records) == 1
    assert {row.status for row in outbox_rows(runtime)} == {"sent"}


def test_a_node_never_takes_over_its_own_claims_even_when_its_row_looks_dead(runtime: Runtime) -> None:
    """What it holds while its row looks dead is still its own: its other workers leave it alone."""
    queue(runtime, 1)
    me = nodes.register(runtime.engine, name="me", host="h", pid=1)
    with unit_of_work(runtime.inbox.sessions) as session:
        from gateway.store import outbox as outbox_store

        held = outbox_store.claim_due(
            session, worker="me:sender", lease=CLAIM_LEASE, now=utcnow(), limit=16, node_id=me
        )
    assert len(held) == 2
    make_stale(runtime, me, nodes.DEAD_AFTER.total_seconds() + 5)
    with pytest.raises(nodes.OwnHeartbeatStale), unit_of_work(runtime.inbox.sessions) as session:
        outbox_store.claim_due(
            session, worker="me:other", lease=CLAIM_LEASE, now=utcnow(), limit=16, node_id=me
        )
    other = nodes.register(runtime.engine, name="other", host="h", pid=2)
    with unit_of_work(runtime.inbox.sessions) as session:  # another node may: that one looks dead
        taken = outbox_store.claim_due(
            session, worker="other:sender", lease=CLAIM_LEASE, now=utcnow(), limit=16, node_id=other
        )
    assert sorted(c.id for c in taken) == sorted(c.id for c in held)


def test_a_processor_whose_node_heartbeat_is_stale_claims_no_mail_until_it_beats(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    me = nodes.register(runtime.engine, name="me", host="h", pid=1)
    inbox = InboxStore(runtime.engine, node_id=me)
    inbox.add(make_mail(), Envelope(mail_from="maria@customer.example", rcpt_tos=(SUPPORT,), source="smtp"))
    make_stale(runtime, me, nodes.DEAD_AFTER.total_seconds() + 5)
    node_runtime = build_runtime(runtime.settings, engine=runtime.engine, node_id=me)
    processor = Processor(node_runtime.deps, worker="me:worker")
    caplog.set_level(logging.INFO, logger="gateway.pipeline.processor")
    assert processor.process_available() == [] and processor.process_available() == []
    assert [s.state for s in inbox.summaries()] == ["pending"]
    assert sum("heartbeat is stale" in r.getMessage() for r in caplog.records) == 1
    nodes.beat(runtime.engine, me)
    assert [r.outcome for r in processor.process_available()] == [Outcome.TICKET]


# --- recording a send fails ---------------------------------------------------------------------


def test_a_send_whose_recording_fails_is_recorded_when_the_store_answers_and_never_sent_again(
    runtime: Runtime, faulty: FaultyStore, sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay takes all four; the store goes away as it takes the first, so "sent" cannot be
    written. Measured before: once the claims' lease ran out, all four were sent again."""
    queue(runtime, 2)
    clock = Clock()
    kept = sender(faulty.sessions, runtime, sink, clock=clock)
    sink.at_data(1, faulty.away)
    caplog.set_level(logging.INFO, logger="gateway.notify.sender")

    results = kept.send_due()
    assert [r.status for r in results] == ["sent"] * 4  # the relay has them
    assert len(sink.captured) == 4
    assert kept.send_due() == []  # still away: nothing claimed, nothing sent

    faulty.back()
    assert {row.status for row in outbox_rows(runtime)} == {"queued"}  # the store does not know yet
    clock.advance(seconds=CLAIM_LEASE.total_seconds() + 60)  # past every lease they were claimed for
    assert kept.send_due() == []  # recorded first, so nothing is due
    rows = outbox_rows(runtime)
    assert {row.status for row in rows} == {"sent"} and all(row.claimed_by is None for row in rows)
    assert sorted(deliveries(sink).values()) == [1, 1, 1, 1]
    assert sum("recorded 4 outcome(s) kept meanwhile" in r.getMessage() for r in caplog.records) == 1


def test_a_retry_whose_recording_fails_is_written_when_the_store_answers_not_after_the_lease(
    runtime: Runtime, faulty: FaultyStore, sink: SmtpSink
) -> None:
    """The relay answers the first notification 451 and the store goes away at that moment, so its
    retry cannot be written (nor the second's "sent"). Once the store answers, the first waits out
    its back-off (a minute at most, the first step), not its 10-minute claim, and each goes once."""
    queue(runtime, 1)
    clock = Clock()
    kept = sender(faulty.sessions, runtime, sink, clock=clock)
    sink.answer(451)
    sink.at_data(1, faulty.away)
    assert [r.status for r in kept.send_due()] == ["retry", "sent"]
    faulty.back()
    assert kept.send_due() == []  # recorded; the refused one waits for its back-off
    rows = outbox_rows(runtime)
    assert sorted(row.status for row in rows) == ["retry", "sent"]
    assert all(row.claimed_by is None for row in rows)
    clock.advance(seconds=runtime.settings.notifications.retry_base_seconds)
    assert [r.status for r in kept.send_due()] == ["sent"]
    assert sorted(deliveries(sink).values()) == [1, 1]
    assert sink.attempts == 3


# --- claims given back when a transaction fails ---------------------------------------------------


def test_mail_whose_batch_transaction_fails_is_given_back_when_the_store_answers_not_after_the_lease(
    runtime: Runtime, faulty: FaultyStore
) -> None:
    """The store goes away between a batch's claim and its transaction: the transaction fails and
    the give-back cannot be written either. Measured before: the mail stayed claimed for the
    5-minute lease."""
    inbox = InboxStore(faulty.engine)
    inbox.add_many(
        [
            (
                make_mail(subject=f"Mail {n}"),
                Envelope(mail_from="m@customer.example", rcpt_tos=(SUPPORT,), source="smtp"),
            )
            for n in range(3)
        ]
    )
    fired: list[bool] = []
    name, parse_mail = STAGES[0]

    def parse_as_the_store_goes(value: object, run: MailRun) -> object:
        """parse_mail, run outside the batch's transaction; the store goes as the first mail is
        parsed, so the batch's transaction cannot begin (on SQLite: another holds the write lock)."""
        if not fired:
            fired.append(True)
            faulty.away()
        return parse_mail(value, run)  # type: ignore[arg-type]

    stages = ((name, parse_as_the_store_goes), *STAGES[1:])
    deps = build_runtime(runtime.settings, engine=faulty.engine).deps
    processor = Processor(deps, worker="cut:worker", stages=stages)
    results = processor.process_available()
    assert {r.outcome for r in results} == {Outcome.RETRY}
    assert processor.process_available() == []  # still away
    faulty.back()
    started = utcnow()
    assert processor.process_available() == []  # the give-backs are written; they wait their back-off
    summaries = runtime.inbox.summaries()
    assert [s.state for s in summaries] == ["pending"] * 3  # not "processing" for the lease
    base = runtime.settings.processing.retry_base_seconds
    with unit_of_work(runtime.inbox.sessions) as session:
        from gateway.store.models import InboxItem

        due = [row.next_attempt_at for row in session.query(InboxItem).order_by(InboxItem.id)]
    assert all(at <= started + timedelta(seconds=base) for at in due)  # the first back-off step
    assert all(at < started + DEFAULT_LEASE for at in due)
