"""The durable inbox on SQLite and PostgreSQL: claims are exclusive, a dead worker's claim comes
back, transient faults retry, and the processor gives every mail exactly one outcome."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import Settings, settings_from_mapping
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.pipeline.processor import Outcome
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from tests.helpers import TEST_SECRET, make_mail

ENVELOPE = Envelope(
    mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
)


def settings_for(database_url: str, tmp_path: Path) -> Settings:
    return settings_from_mapping(
        {
            "gateway": {
                "addresses": ["support@smilepass.example"],
                "ticket_prefix": "SP",
                "secret": TEST_SECRET,
            },
            "database": {"url": database_url},
            "storage": {"blob_dir": str(tmp_path / "blobs")},
        },
        environ={},
    )


@pytest.fixture
def runtime(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    built = build_runtime(settings_for(database_url, tmp_path))
    yield built
    built.close()


def ticket_count(runtime: Runtime) -> int:
    with unit_of_work(runtime.inbox.sessions) as session:
        return len(ticket_store.queue(session))


def test_stored_bytes_come_back_unchanged(runtime: Runtime) -> None:
    raw = make_mail("Ünïcödé sübject", body="8-bit body: café\r\n") + b"\xff\xfe raw tail"
    [inbox_id] = runtime.inbox.add_many([(raw, ENVELOPE)])
    summary, stored = runtime.inbox.get(inbox_id) or (None, b"")
    assert stored == raw
    assert summary is not None and summary.rcpt_tos == ("support@smilepass.example",)
    assert summary.state == "pending"


def test_a_claim_is_exclusive(runtime: Runtime) -> None:
    ids = runtime.inbox.add_many([(make_mail(f"mail {n}"), ENVELOPE) for n in range(5)])

    first = runtime.inbox.claim("worker-a", limit=3)
    second = runtime.inbox.claim("worker-b", limit=10)

    assert [c.id for c in first] == ids[:3]
    assert [c.id for c in second] == ids[3:]
    assert runtime.inbox.claim("worker-c", limit=10) == []


def test_a_dead_workers_claim_comes_back_and_is_processed_once(runtime: Runtime) -> None:
    [inbox_id] = runtime.inbox.add_many([(make_mail("Crash victim"), ENVELOPE)])
    # worker-a claims and dies (its lease is already over); nothing else may be lost or doubled.
    [claimed] = runtime.inbox.claim("worker-a", lease=timedelta(seconds=-1))
    assert claimed.id == inbox_id

    results = runtime.processor("worker-b").process_available()

    assert [(r.inbox_id, r.outcome) for r in results] == [(inbox_id, Outcome.TICKET)]
    assert ticket_count(runtime) == 1
    assert runtime.processor("worker-c").process_available() == []


def test_processing_the_same_mail_again_after_a_crash_is_a_duplicate(runtime: Runtime) -> None:
    raw = make_mail("Delivered twice", message_id="<twice@customer.example>")
    first, second = runtime.inbox.add_many([(raw, ENVELOPE), (raw, ENVELOPE)])

    results = runtime.processor("w").process_ids([first, second])

    assert [r.outcome for r in results] == [Outcome.TICKET, Outcome.DUPLICATE]
    assert results[1].ticket_id == results[0].ticket_id
    assert ticket_count(runtime) == 1


def test_retry_later_and_quarantine_and_requeue(runtime: Runtime) -> None:
    [inbox_id] = runtime.inbox.add_many([(make_mail("Flaky"), ENVELOPE)])
    runtime.inbox.claim("w", ids=[inbox_id])
    runtime.inbox.retry_later(inbox_id, delay=timedelta(hours=1), error="database went away")
    assert runtime.inbox.claim("w") == []  # not due yet

    runtime.inbox.quarantine(inbox_id, reason="gave up", detail="Traceback ...")
    [parked] = runtime.inbox.summaries(state="quarantined")
    assert (parked.id, parked.error) == (inbox_id, "gave up")

    assert runtime.inbox.requeue_quarantined() == [inbox_id]
    [result] = runtime.processor("w").process_available()
    assert result.outcome is Outcome.TICKET


def test_mail_stored_claimed_is_processed_by_its_claimer_alone(runtime: Runtime) -> None:
    # `ingest` stores its mail already claimed (one transaction): nobody else takes it meanwhile.
    ingest = runtime.processor("ingest")
    [item] = runtime.inbox.add_claimed([(make_mail("Piped"), ENVELOPE)], ingest.worker)
    [summary] = runtime.inbox.summaries()
    assert (summary.id, summary.state, summary.attempts) == (item.id, "processing", 1)
    assert runtime.processor("serve").process_available() == []
    assert runtime.inbox.due_now() == []  # nor the next `ingest` or `process`

    [result] = ingest.process_batch([item])

    assert (result.inbox_id, result.outcome) == (item.id, Outcome.TICKET)
    [summary] = runtime.inbox.summaries()
    assert (summary.state, summary.attempts, summary.outcome) == ("done", 1, "ticket")
    assert ticket_count(runtime) == 1


def test_mail_stored_claimed_by_a_killed_ingest_is_taken_up_once_its_lease_runs_out(
    runtime: Runtime,
) -> None:
    # An `ingest` killed between storing and processing leaves its claim; here its lease is over.
    ingest = runtime.processor("ingest")
    [item] = runtime.inbox.add_claimed(
        [(make_mail("Ingest was killed"), ENVELOPE)], ingest.worker, lease=timedelta(seconds=-1)
    )
    assert runtime.inbox.due_now() == [item.id]  # the next `ingest` or `process` takes it up

    [result] = runtime.processor("serve").process_available()

    assert (result.inbox_id, result.outcome) == (item.id, Outcome.TICKET)
    [summary] = runtime.inbox.summaries()
    assert (summary.state, summary.attempts) == ("done", 2)  # the killed run's attempt counted
    # Were the killed run still alive after all, its result would not count: finished once.
    [late] = ingest.process_batch([item])
    assert (late.outcome, late.detail) == (Outcome.RETRY, "taken over by another worker")
    assert ticket_count(runtime) == 1
