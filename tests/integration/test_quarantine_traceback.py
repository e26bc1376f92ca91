"""A stage that raises something nobody expected: the mail is quarantined with the traceback, and
`ticketgate quarantine show` prints it; `quarantine retry` runs the mail again (through the real
stages) and it becomes a ticket. On SQLite and PostgreSQL.

No real input makes a shipped stage raise today (the property tests hunt for one and fail when they
find it), so the failing stage is a careless one written for this test and run through a processor
built with its own stage table — the real exception boundary, the real inbox, the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.pipeline import processor as processor_module
from gateway.pipeline.processor import STAGES, MailRun, Outcome, Processor
from gateway.pipeline.stage_values import Decision, P, Threaded
from gateway.pipeline.stages.open_ticket import open_ticket
from tests.helpers import make_mail, ticketgate, write_config


def seat_count_stage(mail: P, run: MailRun) -> P:
    """Reads a header as a number without asking whether it is one: raises ValueError on "twelve"."""
    seats = mail.mail.header("X-Seats")
    if seats is not None and int(seats) > 1000:
        raise NotImplementedError("large accounts")  # not reached: the mail says "twelve"
    return mail


def with_seat_count_stage() -> tuple:
    parse_index = [name for name, _ in STAGES].index("parse_mail")
    return (*STAGES[: parse_index + 1], ("seat_count", seat_count_stage), *STAGES[parse_index + 1 :])


def test_an_unexpected_stage_error_is_quarantined_with_its_traceback_and_retried(
    tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    runtime = build_runtime(load_settings(config, environ={}))
    try:
        raw = make_mail("Seats for next year", headers={"X-Seats": "twelve"})
        envelope = Envelope(
            mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
        )
        inbox_id = runtime.inbox.add(raw, envelope)
        processor = Processor(runtime.deps, worker="test:worker", stages=with_seat_count_stage())
        [result] = processor.process_ids([inbox_id])
    finally:
        runtime.close()

    assert result.outcome is Outcome.QUARANTINE
    listed = ticketgate("quarantine", "list", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    [item] = listed.json()
    assert item["id"] == inbox_id
    # The reason names the stage that raised.
    assert item["reason"] == "stage seat_count: ValueError: invalid literal for int() with base 10: 'twelve'"

    shown = ticketgate("quarantine", "show", str(inbox_id), config=config)
    assert shown.returncode == 0, shown.stderr
    assert f"reason: {item['reason']}" in shown.stdout
    assert "Traceback (most recent call last):" in shown.stdout
    assert "in seat_count_stage" in shown.stdout  # the traceback points at the stage that raised
    assert "X-Seats: twelve" in shown.stdout  # and the original follows

    retried = ticketgate("quarantine", "retry", str(inbox_id), config=config)
    assert retried.returncode == 0, retried.stderr
    assert f"inbox {inbox_id}: ticket SP-1" in retried.stdout
    assert ticketgate("quarantine", "list", "--json", config=config).json() == []
    tickets = ticketgate("tickets", "list", "--json", config=config).json()
    assert [t["title"] for t in tickets] == ["Seats for next year"]


def open_ticket_then_count_seats(mail: Threaded, run: MailRun) -> Decision:
    """open_ticket, then the careless seat count: raises after the ticket's rows are written."""
    decision = open_ticket(mail, run)
    seat_count_stage(mail, run)
    return decision


def with_seats_checked_late() -> tuple:
    assert STAGES[-1][0] == "open_ticket"
    return (*STAGES[:-1], ("open_ticket", open_ticket_then_count_seats))


def test_one_bad_mail_in_a_batch_is_quarantined_alone_and_the_rest_of_its_batch_commits(
    tmp_path: Path, database_url: str
) -> None:
    """Five mails claimed and processed together in one batch: the third raises once its ticket
    rows are written. The batch, run first without savepoints, is rolled back and run again with a
    savepoint per mail: the third's savepoint alone is rolled back (no ticket, no notification, its
    row quarantined with the reason), while the mails before and after it are tickets with their
    notifications queued, each once (nothing of the first run is left)."""
    config = write_config(tmp_path, database_url)
    runtime = build_runtime(load_settings(config, environ={}))
    envelope = Envelope(
        mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
    )
    subjects = [f"Batch mail {n}" for n in range(1, 6)]
    try:
        ids = [
            runtime.inbox.add(make_mail(subject, headers={"X-Seats": "twelve" if n == 3 else "12"}), envelope)
            for n, subject in enumerate(subjects, start=1)
        ]
        processor = Processor(runtime.deps, worker="test:worker", stages=with_seats_checked_late())
        results = processor.process_available(limit=len(ids))
    finally:
        runtime.close()

    assert [r.inbox_id for r in results] == ids
    assert [r.outcome for r in results] == [Outcome.TICKET] * 2 + [Outcome.QUARANTINE] + [Outcome.TICKET] * 2

    inbox = {row["id"]: row for row in ticketgate("inbox", "list", "--json", config=config).json()}
    assert [inbox[i]["outcome"] for i in ids] == ["ticket", "ticket", "quarantine", "ticket", "ticket"]
    assert (
        inbox[ids[2]]["reason"]
        == "stage open_ticket: ValueError: invalid literal for int() with base 10: 'twelve'"
    )
    tickets = ticketgate("tickets", "list", "--json", config=config).json()
    assert sorted(t["title"] for t in tickets) == [s for n, s in enumerate(subjects, start=1) if n != 3]
    by_title = {t["title"]: t["ref"] for t in tickets}
    assert all(inbox[i]["ticket"] == by_title[subjects[n]] for n, i in enumerate(ids) if n != 2)

    # Each committed mail's acknowledgement is queued once; the quarantined one's none.
    outbox = ticketgate("outbox", "list", "--json", config=config).json()
    acks = sorted(row["ticket"] for row in outbox if row["to"] == "maria@customer.example")
    assert acks == sorted(by_title.values())


def test_a_batch_runs_without_savepoints_unless_a_mail_of_it_fails(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Savepoints cost every mail (two statements and their bookkeeping): a batch whose mails all
    succeed makes none; one with a failing mail is run again with one per mail. (SQLite's time
    bound on a batch is lifted, so a loaded machine does not split it.)"""
    monkeypatch.setattr(processor_module, "BATCH_SECONDS", 3600.0)
    config = write_config(tmp_path, database_url)
    runtime = build_runtime(load_settings(config, environ={}))
    savepoints: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SAVEPOINT"):
            savepoints.append(statement)

    envelope = Envelope(
        mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
    )
    try:
        event.listen(runtime.inbox.engine, "before_cursor_execute", count)
        processor = Processor(runtime.deps, worker="test:worker", stages=with_seats_checked_late())
        for n in range(3):
            runtime.inbox.add(make_mail(f"Good mail {n}", headers={"X-Seats": "12"}), envelope)
        assert [r.outcome for r in processor.process_available(limit=10)] == [Outcome.TICKET] * 3
        assert savepoints == []

        for n, seats in enumerate(["12", "twelve", "12"]):
            runtime.inbox.add(make_mail(f"Mixed mail {n}", headers={"X-Seats": seats}), envelope)
        outcomes = [r.outcome for r in processor.process_available(limit=10)]
        assert outcomes == [Outcome.TICKET, Outcome.QUARANTINE, Outcome.TICKET]
        assert len(savepoints) == 3  # the batch run again: one per mail
    finally:
        runtime.close()
