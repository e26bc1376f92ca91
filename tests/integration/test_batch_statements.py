"""What a batch reads or writes once for all its mails instead of once per mail, on SQLite and
PostgreSQL (docs/performance/throughput.md, "Fewer round trips per mail"):

- the undeliverable marks of the batch's senders and of staff, read at its start and kept for the
  rest of its transaction (`outbox.know_undeliverable`), and still right when a mail of the same
  batch changes one;
- the inbox rows' outcomes and the mails' de-duplication keys, written together at its end, and
  still found by a later mail of the same batch (the same mail twice, a Message-ID reused); a
  claim another worker took over meanwhile is found then (the batch runs again, a savepoint per
  mail);
- the notifications it queues, written together at its end: the per-sender acknowledgement limit
  still counts the ones queued earlier in the same batch;
- on PostgreSQL, outbox ids taken from the sequence in blocks: never one id twice, across
  transactions running side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.config import load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.pipeline.processor import MailRun, Outcome, Processor
from gateway.pipeline.stage_values import P
from gateway.store import outbox
from gateway.store import tickets as store
from gateway.store.db import unit_of_work
from gateway.store.models import utcnow
from tests.helpers import make_mail
from tests.integration.smtp_sink import SmtpSink
from tests.integration.test_batches import after_parse_mail
from tests.integration.test_notifications import (
    SUPPORT,
    config_with,
    dsn_for,
    events,
    outbox_rows,
    sent_to,
    smtp_sender,
)

TRIAGE = "triage@smilepass.example"


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    built = build_runtime(load_settings(config_with(tmp_path, database_url)))
    try:
        yield built
    finally:
        built.close()


def customer(address: str) -> Envelope:
    return Envelope(mail_from=address, rcpt_tos=(SUPPORT,), source="smtp")


def test_a_mark_set_by_a_bounce_counts_for_the_next_mail_of_the_same_batch(runtime: Runtime) -> None:
    """Triage's mark is read (as none) when the batch begins; a bounce early in the batch marks it;
    the new ticket after it in the same batch must not be mailed to triage."""
    runtime.inbox.add_many([(make_mail(subject="First"), customer("maria@customer.example"))])
    runtime.processor("test").process_available()
    with SmtpSink() as sink:
        smtp_sender(runtime, sink).send_due()
    (to_triage,) = sent_to(sink, TRIAGE)

    bounce = (dsn_for(to_triage), Envelope(mail_from="", rcpt_tos=(to_triage.mail_from,), source="smtp"))
    new = (make_mail(subject="Second", sender="bob@customer.example"), customer("bob@customer.example"))
    ids = runtime.inbox.add_many([bounce, new])
    results = runtime.processor("test").process_ids(ids)

    assert [r.outcome for r in results] == [Outcome.BOUNCE, Outcome.TICKET]
    with unit_of_work(runtime.inbox.sessions) as session:
        assert "5.1.1" in (outbox.undeliverable_reason(session, TRIAGE) or "")
    staff_new = [row for row in outbox_rows(runtime, "staff_new_ticket") if row.ticket_id == 2]
    assert staff_new == []
    skipped = [e.new or "" for e in events(runtime, "notification_skipped") if e.ticket_id == 2]
    assert any(TRIAGE in why and "undeliverable" in why for why in skipped), skipped
    assert [row.to_address for row in outbox_rows(runtime, "ticket_created")][-1] == "bob@customer.example"


def test_marks_known_for_a_transaction_follow_what_it_writes_and_agree_with_the_table(
    runtime: Runtime,
) -> None:
    with unit_of_work(runtime.inbox.sessions) as session:
        outbox.mark_undeliverable(session, "Gone@Customer.example", reason="bounced: 5.1.1", inbox_id=None)

    with unit_of_work(runtime.inbox.sessions) as session:
        outbox.know_undeliverable(session, ["gone@customer.example", "Fine@customer.example", TRIAGE])
        assert outbox.undeliverable_reason(session, "GONE@customer.example") == "bounced: 5.1.1"
        assert outbox.undeliverable_reason(session, "fine@customer.example") is None
        assert outbox.clear_undeliverable(session, "fine@customer.example") is False
        assert outbox.clear_undeliverable(session, "gone@customer.example") is True
        assert outbox.undeliverable_reason(session, "gone@customer.example") is None
        outbox.mark_undeliverable(session, TRIAGE, reason="bounced: 5.2.2", inbox_id=None)
        assert outbox.undeliverable_reason(session, TRIAGE) == "bounced: 5.2.2"
        # One it was not told about is asked of the table.
        assert outbox.undeliverable_reason(session, "other@customer.example") is None

    with unit_of_work(runtime.inbox.sessions) as session:  # a new transaction asks the table
        assert outbox.undeliverable_reason(session, "gone@customer.example") is None
        assert outbox.undeliverable_reason(session, TRIAGE) == "bounced: 5.2.2"
        assert outbox.undeliverable_reason(session, "fine@customer.example") is None


def test_a_claim_taken_over_during_a_batch_is_found_when_its_outcomes_are_written(runtime: Runtime) -> None:
    """The outcomes are written together at the end of the batch, only for rows the worker still
    holds; one taken over by another worker sends the batch round again, a savepoint per mail, so
    the other mails are recorded and the taken one is left to its new owner."""
    mails = [
        (make_mail(subject=f"Mail {n}", sender=f"c{n}@customer.example"), customer(f"c{n}@customer.example"))
        for n in range(3)
    ]
    ids = runtime.inbox.add_many(mails)
    processor = Processor(runtime.deps, worker="test:mine")
    items = runtime.inbox.claim(processor.worker, ids=ids)
    with unit_of_work(runtime.inbox.sessions) as session:
        session.execute(text("UPDATE inbox SET claimed_by = 'test:theirs' WHERE id = :id"), {"id": ids[1]})

    results = processor.process_batch(items)

    assert [r.outcome for r in results] == [Outcome.TICKET, Outcome.RETRY, Outcome.TICKET]
    assert "taken over" in results[1].detail
    with unit_of_work(runtime.inbox.sessions) as session:
        rows = session.execute(text("SELECT id, state, claimed_by FROM inbox ORDER BY id")).all()
        titles = session.execute(text("SELECT title FROM tickets ORDER BY id")).scalars().all()
    assert [(row.state, row.claimed_by) for row in rows][1] == ("processing", "test:theirs")
    assert [row.state for row in rows] == ["done", "processing", "done"]
    assert titles == ["Mail 0", "Mail 2"]


def test_the_same_mail_twice_and_a_reused_message_id_in_one_batch(runtime: Runtime) -> None:
    maria = customer("maria@customer.example")
    first = make_mail(subject="Card declined", message_id="<same@customer.example>")
    other = make_mail(subject="Refund please", message_id="<same@customer.example>")
    ids = runtime.inbox.add_many([(first, maria), (first, maria), (other, maria), (other, maria)])

    results = runtime.processor("test").process_ids(ids)

    assert [r.outcome for r in results] == [
        Outcome.TICKET,
        Outcome.DUPLICATE,
        Outcome.TICKET,
        Outcome.DUPLICATE,
    ]
    assert [r.ticket_id for r in results] == [1, 1, 2, 2]
    assert results[1].detail == f"duplicate of inbox {ids[0]}"
    assert results[3].detail == f"duplicate of inbox {ids[2]}"
    with unit_of_work(runtime.inbox.sessions) as session:
        seen = session.execute(text("SELECT inbox_id, ticket_id FROM seen_mails ORDER BY inbox_id")).all()
        notes = session.execute(text("SELECT id, error FROM inbox ORDER BY id")).all()
    assert [tuple(row) for row in seen] == [(ids[0], 1), (ids[2], 2)]
    assert f"also used by a different mail (inbox {ids[0]})" in (dict(notes)[ids[2]] or "")
    # Processed again later (redelivered), each is still known.
    again = runtime.processor("test").process_ids(runtime.inbox.add_many([(other, maria)]))
    assert [(r.outcome, r.ticket_id) for r in again] == [(Outcome.DUPLICATE, 2)]


def test_the_acknowledgement_limit_counts_earlier_batches_and_earlier_mails_of_the_batch(
    runtime: Runtime,
) -> None:
    """The acknowledgements stored by an earlier batch (read once when the batch begins) and the
    ones queued by this batch's earlier mails (held back until it ends) both count."""
    limit = runtime.settings.outbound.ack_limit_per_hour
    maria = customer("maria@customer.example")
    mails = [(make_mail(subject=f"Problem {n}"), maria) for n in range(limit + 2)]

    earlier = runtime.processor("test").process_ids(runtime.inbox.add_many(mails[: limit - 2]))
    results = earlier + runtime.processor("test").process_ids(runtime.inbox.add_many(mails[limit - 2 :]))

    assert [r.outcome for r in results] == [Outcome.TICKET] * (limit + 2)
    acks = outbox_rows(runtime, "ticket_created")
    assert [row.to_address for row in acks] == ["maria@customer.example"] * limit
    assert len(outbox_rows(runtime, "staff_new_ticket")) == limit + 2  # staff hear of every one
    skipped = [e.new or "" for e in events(runtime, "notification_skipped")]
    assert sum(f"limit {limit}" in why for why in skipped) == 2, skipped


def test_a_key_another_node_stores_during_the_batch_makes_the_mail_a_duplicate_at_once(
    fresh_postgres: str, tmp_path: Path
) -> None:
    """The keys are written at the end of the batch; if another node stored the same mail's key
    meanwhile (the same mail through SMTP and IMAP at once), the unique index refuses the write
    there, and the batch runs again a savepoint per mail: that mail is then a duplicate, not a
    fault to retry later."""
    built = build_runtime(load_settings(config_with(tmp_path, fresh_postgres)))
    maria = customer("maria@customer.example")
    ids = built.inbox.add_many([(make_mail(subject=f"Mail {n}"), maria) for n in range(3)])
    other_copy = built.inbox.add(make_mail(subject="Mail 1"), maria)  # the same mail, through IMAP
    stored_by_the_other_node: list[str] = []

    def other_node_stores_it(mail: P, run: MailRun) -> P:
        if mail.mail.subject == "Mail 1" and not stored_by_the_other_node:
            with unit_of_work(built.inbox.sessions) as session:  # its own transaction, committed
                store.record_seen(
                    session, key=mail.dedup_key, message_id=mail.mail.message_id,
                    content_hash=mail.mail.content_hash, inbox_id=other_copy, outcome="ticket",
                    ticket_id=None,
                )  # fmt: skip
            stored_by_the_other_node.append(mail.dedup_key)
        return mail

    try:
        stages = after_parse_mail("other_node", other_node_stores_it)
        results = Processor(built.deps, worker="test:mine", stages=stages).process_ids(ids)
    finally:
        built.close()
    assert stored_by_the_other_node
    assert [r.outcome for r in results] == [Outcome.TICKET, Outcome.DUPLICATE, Outcome.TICKET]
    assert results[1].detail == f"duplicate of inbox {other_copy}"


def test_outbox_ids_taken_in_blocks_are_never_shared_by_transactions_side_by_side(
    fresh_postgres: str, tmp_path: Path
) -> None:
    built = build_runtime(load_settings(config_with(tmp_path, fresh_postgres)))
    deadline = utcnow() + timedelta(hours=48)
    try:
        sessions = [built.inbox.sessions() for _ in range(2)]
        taken: list[list[int]] = [[], []]
        for _ in range(40):  # interleaved: each transaction runs out of its blocks several times
            for index, session in enumerate(sessions):
                row = outbox.add(
                    session, ticket_id=None, template="ticket_created", to_address=f"c{index}@example.com",
                    deadline=deadline, inbox_id=None, context={},
                )  # fmt: skip
                taken[index].append(row.id)
        for session in sessions:
            session.commit()
            session.close()
        stored = [row.id for row in outbox_rows(built)]
    finally:
        built.close()
    assert all(ids == sorted(ids) for ids in taken)  # in the order the sequence gave them
    assert len(set(taken[0]) | set(taken[1])) == 80
    assert sorted(stored) == sorted(taken[0] + taken[1])
