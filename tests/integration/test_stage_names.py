"""The stage that settled a mail is named in its log line, and a Message-ID collision is said once
on the ticket a reply joined, with the inbox row of the mail that caused it (it used to be written
without one on replies). On SQLite and PostgreSQL, through the real processor and the real CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.pipeline.processor import Outcome
from gateway.store.models import Event
from tests.helpers import make_mail, ticketgate, write_config

ENVELOPE = Envelope(
    mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
)


def test_the_log_line_names_the_stage_that_settled_the_mail(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = build_runtime(load_settings(write_config(tmp_path, database_url), environ={}))
    try:
        raw = make_mail("Card declined")
        processor = runtime.processor("test")
        with caplog.at_level(logging.INFO, logger="gateway.pipeline.processor"):
            [first] = processor.process_ids([runtime.inbox.add(raw, ENVELOPE)])
            [again] = processor.process_ids([runtime.inbox.add(raw, ENVELOPE)])
    finally:
        runtime.close()

    assert (first.outcome, again.outcome) == (Outcome.TICKET, Outcome.DUPLICATE)
    lines = [r for r in caplog.records if r.name == "gateway.pipeline.processor"]
    assert [r.getMessage() for r in lines] == [
        f"inbox {first.inbox_id}: stage open_ticket: ticket (new ticket {first.ticket_id})",
        f"inbox {again.inbox_id}: stage check_duplicate: duplicate (duplicate of inbox {first.inbox_id})",
    ]
    assert [getattr(r, "stage", None) for r in lines] == ["open_ticket", "check_duplicate"]


def test_a_reply_reusing_a_message_id_gets_one_collision_event_with_its_inbox_row(
    tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    runtime = build_runtime(load_settings(config, environ={}))
    try:
        processor = runtime.processor("test")
        opening = make_mail("Card declined", message_id="<first@customer.example>")
        [opened] = processor.process_ids([runtime.inbox.add(opening, ENVELOPE)])
        # A sloppy client gives its reply the Message-ID of the mail it answers.
        reply = make_mail(
            "Re: Card declined",
            "It happened again this morning.\n",
            message_id="<first@customer.example>",
            headers={"In-Reply-To": "<first@customer.example>"},
        )
        [replied] = processor.process_ids([runtime.inbox.add(reply, ENVELOPE)])
        with runtime.inbox.sessions() as session:
            stored = session.scalars(select(Event).where(Event.kind == "message_id_collision")).all()
            rows = [(e.ticket_id, e.inbox_id, e.new) for e in stored]
    finally:
        runtime.close()

    assert replied.outcome is Outcome.REPLY and replied.ticket_id == opened.ticket_id
    note = f"Message-ID <first@customer.example> also used by a different mail (inbox {opened.inbox_id})"
    assert rows == [(opened.ticket_id, replied.inbox_id, note)]
    shown = ticketgate("tickets", "show", "SP-1", "--json", config=config).json()
    assert [e["new"] for e in shown["events"] if e["kind"] == "message_id_collision"] == [note]
    listed = ticketgate("inbox", "list", "--json", config=config).json()
    assert note in next(entry["reason"] for entry in listed if entry["id"] == replied.inbox_id)
