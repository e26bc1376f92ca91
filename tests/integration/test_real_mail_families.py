"""The mail the world sends (issue 11), end to end: out-of-office by subject alone, requester
fallbacks, leading junk, raw 8-bit headers, prefixes written without a space.

Mail goes in as `ticketgate ingest` takes it (the pipe intake reads it, stores it and processes
it, here in-process to keep the suite fast; one test runs the real command), and what is checked
is what a user sees: the outcome, the tickets as `tickets list/show --json` print them, and the
notifications as `outbox list` shows them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.intake.pipe import read_inputs, store_inputs
from gateway.present import ticket_json, ticket_summary_json
from gateway.store import outbox as outbox_store
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from tests.helpers import make_mail, ticketgate, write_config


class Desk:
    """The pipe intake and the CLI's views, in-process, on the test's own SQLite database."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.config = write_config(tmp_path, f"sqlite:///{tmp_path / 'ticketgate.db'}")
        self.runtime: Runtime = build_runtime(load_settings(self.config, environ={}))
        self.count = 0

    def ingest(self, raw: bytes, *, sender: str = "") -> str:
        """The outcome of one piped mail, as `ingest` reports it."""
        self.count += 1
        path = self.tmp_path / f"{self.count}.eml"
        path.write_bytes(raw)
        [stored] = store_inputs(
            self.runtime.inbox,
            read_inputs([str(path)], [], io.BytesIO()),
            Envelope(mail_from=sender, rcpt_tos=(), source="pipe"),
        )
        assert stored.exit_code == 0, stored.problem
        assert stored.inbox_id is not None
        [result] = self.runtime.processor("test").process_ids([stored.inbox_id])
        return result.outcome.value

    def tickets(self) -> list[dict[str, Any]]:
        with unit_of_work(self.runtime.inbox.sessions) as session:
            return [ticket_summary_json(t, "SP") for t in ticket_store.queue(session)]

    def show(self, ref: str) -> dict[str, Any]:
        with unit_of_work(self.runtime.inbox.sessions) as session:
            ticket = ticket_store.load_ticket(session, int(ref.split("-")[1]))
            assert ticket is not None
            return ticket_json(ticket, "SP", outbox_store.for_ticket(session, ticket.id))

    def outbox(self) -> list[str]:
        """The template of every notification queued, oldest first."""
        with unit_of_work(self.runtime.inbox.sessions) as session:
            return [row.template for row in outbox_store.listing(session)]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    running = Desk(tmp_path)
    try:
        yield running
    finally:
        running.runtime.close()


def test_an_out_of_office_by_subject_alone_opens_no_ticket_and_gets_no_acknowledgement(desk: Desk) -> None:
    # Given an out-of-office whose only sign is its subject (no Auto-Submitted, no X-Autoreply)
    raw = make_mail(
        "Automatic reply: Your invoice 1043",
        "I am out of the office until 7 December with limited access to email.\n",
        sender="Jan Novak <jan@customer.example>",
    )
    # When it is piped in, Then it is recorded as an auto-reply: no ticket, nothing sent
    assert desk.ingest(raw) == "auto_reply"
    assert desk.tickets() == []
    assert desk.outbox() == []


def test_an_out_of_office_on_a_ticket_joins_it_and_changes_nothing(desk: Desk) -> None:
    assert desk.ingest(make_mail("Card declined", sender="Jan Novak <jan@customer.example>")) == "ticket"
    [ticket] = desk.tickets()
    sent_before = desk.outbox()
    assert "ticket_created" in sent_before

    outcome = desk.ingest(
        make_mail(
            f"Abwesenheitsnotiz: [{ticket['ref']}] Card declined",
            "Ich bin bis 7. Dezember nicht im Büro.\n",
            sender="Jan Novak <jan@customer.example>",
        )
    )

    assert outcome == "auto_reply"
    shown = desk.show(ticket["ref"])
    assert shown["status"] == "Open"
    assert len(shown["messages"]) == 2
    assert shown["messages"][1]["visibility"] == "internal"
    assert desk.outbox() == sent_before  # nothing new was sent


def test_a_person_writing_about_being_out_of_office_gets_a_ticket(desk: Desk) -> None:
    assert desk.ingest(make_mail("Out of office next week, who takes my ticket?")) == "ticket"
    [ticket] = desk.tickets()
    assert ticket["title"] == "Out of office next week, who takes my ticket?"
    assert "ticket_created" in desk.outbox()


def test_the_requester_comes_from_sender_when_from_is_empty(desk: Desk) -> None:
    raw = (
        b"From: <>\r\nSender: Maria Lopez <maria@customer.example>\r\nTo: support@smilepass.example\r\n"
        b"Subject: Card declined\r\nMessage-ID: <req-1@customer.example>\r\n\r\nMy card is declined.\r\n"
    )
    assert desk.ingest(raw) == "ticket"
    [ticket] = desk.tickets()
    assert ticket["requester"] == {"address": "maria@customer.example", "name": "Maria Lopez"}


def test_the_requester_comes_from_the_envelope_and_keeps_the_from_name(desk: Desk) -> None:
    raw = (
        b"From: Maria Lopez\r\nTo: support@smilepass.example\r\nSubject: Card declined\r\n"
        b"Message-ID: <req-2@customer.example>\r\n\r\nMy card is declined.\r\n"
    )
    assert desk.ingest(raw, sender="maria@customer.example") == "ticket"
    [ticket] = desk.tickets()
    assert ticket["requester"] == {"address": "maria@customer.example", "name": "Maria Lopez"}


def test_nobody_named_gives_unknown_invalid_with_an_event_saying_why(desk: Desk) -> None:
    raw = (
        b"From: Maria Lopez\r\nTo: support@smilepass.example\r\nSubject: Card declined\r\n"
        b"Message-ID: <req-3@customer.example>\r\n\r\nMy card is declined.\r\n"
    )
    assert desk.ingest(raw) == "ticket"
    [ticket] = desk.tickets()
    assert ticket["requester"] == {"address": "unknown@invalid", "name": "Maria Lopez"}
    [event] = [e for e in desk.show(ticket["ref"])["events"] if e["kind"] == "requester_unknown"]
    assert "no usable address" in event["new"] and "Maria Lopez" in event["new"]


def test_raw_gb2312_headers_without_a_declaration_make_a_readable_ticket(desk: Desk) -> None:
    raw = (
        "From: 李雷 <lilei@customer.example>\r\nTo: support@smilepass.example\r\n"
        "Subject: SV:发票金额不对\r\nMessage-ID: <gb-1@customer.example>\r\n\r\n"
        "发票上的金额和订单不一致。\r\n"
    ).encode("gb2312")
    assert desk.ingest(raw) == "ticket"
    [ticket] = desk.tickets()
    assert ticket["title"] == "发票金额不对"
    assert ticket["requester"] == {"address": "lilei@customer.example", "name": "李雷"}
    assert desk.show(ticket["ref"])["description"] == "发票上的金额和订单不一致。"


def test_the_ingest_command_reads_below_leading_junk_and_refuses_input_without_headers(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'ticketgate.db'}")
    junk = tmp_path / "junk.eml"
    junk.write_bytes(b"----- Original message -----\r\n" + make_mail("Card declined at checkout"))
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"Meeting notes\nNothing here is a mail.\n")

    run = ticketgate("ingest", str(junk), str(notes), config=config)

    assert run.returncode == 65, run.stderr  # the worst of the two: one input was not a mail
    assert "junk.eml: inbox 1: ticket SP-1" in run.stderr
    assert "notes.txt: not stored: not a mail" in run.stderr
