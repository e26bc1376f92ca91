"""A staff notification reads back the files of the mail it is about only when that mail stored some
(planner_values.Known.without_files): a plain mail's staff mail asks the database nothing about
screenshots or attachments, and a mail with files still gets them listed, new ticket or reply."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from gateway.config import load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.pipeline.processor import Outcome, Processor
from gateway.store.db import unit_of_work
from gateway.store.models import OutboxRow
from tests.helpers import make_mail, write_config

ENVELOPE = Envelope(
    mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'known.db'}")
    runtime = build_runtime(load_settings(config, environ={}))
    try:
        yield runtime
    finally:
        runtime.close()


def with_pdf(subject: str, *, reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Maria Lopez <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash(subject))}@customer.example>"
    if reply_to is not None:
        msg["In-Reply-To"] = msg["References"] = reply_to
    msg.set_content("The invoice is attached.\n")
    pdf = b"%PDF-1.4\n" + b"x" * 2000
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="bill.pdf")
    return msg.as_bytes()


def process(runtime: Runtime, raw: bytes) -> tuple[Outcome, list[str]]:
    """The mail processed; its outcome and every statement it ran that read a message's files."""
    file_reads: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and (
            "FROM screenshots" in statement or "FROM attachments" in statement
        ):
            file_reads.append(statement)

    engine = runtime.inbox.engine
    event.listen(engine, "before_cursor_execute", watch)
    try:
        [item_id] = runtime.inbox.add_many([(raw, ENVELOPE)])
        [result] = Processor(runtime.deps, worker="test:worker").process_ids([item_id])
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    return result.outcome, file_reads


def staff_rows(runtime: Runtime) -> list[OutboxRow]:
    with unit_of_work(runtime.inbox.sessions) as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
        return [row for row in rows if row.to_address == "triage@smilepass.example"]


def test_a_plain_mail_and_its_reply_do_not_read_back_files_they_did_not_store(runtime: Runtime) -> None:
    outcome, reads = process(runtime, make_mail(message_id="<plain-1@customer.example>"))
    assert outcome is Outcome.TICKET
    assert reads == []
    reply = make_mail(
        "Re: Payment plan ADD button does nothing",
        "Still broken.\n",
        headers={"In-Reply-To": "<plain-1@customer.example>", "References": "<plain-1@customer.example>"},
    )
    outcome, reads = process(runtime, reply)
    assert outcome is Outcome.REPLY
    assert reads == []
    assert [row.template for row in staff_rows(runtime)] == ["staff_new_ticket", "requester_reply"]
    assert all("attachments" not in row.context for row in staff_rows(runtime))


def test_a_mail_with_a_file_still_lists_it_to_staff_new_ticket_and_reply(runtime: Runtime) -> None:
    outcome, reads = process(runtime, with_pdf("Invoice 4711 is wrong"))
    assert outcome is Outcome.TICKET
    assert reads, "the files of a mail that has some are read for the staff mail"
    opened = process(runtime, make_mail(message_id="<plain-2@customer.example>"))
    assert opened[0] is Outcome.TICKET
    outcome, reads = process(runtime, with_pdf("Re: more", reply_to="<plain-2@customer.example>"))
    assert outcome is Outcome.REPLY
    assert reads
    new, _plain, reply = staff_rows(runtime)
    assert [file["name"] for file in new.context["attachments"]] == ["bill.pdf"]
    assert [file["name"] for file in reply.context["attachments"]] == ["bill.pdf"]
    assert b"bill.pdf" in reply.raw
