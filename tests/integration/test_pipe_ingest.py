"""`ticketgate ingest` end to end: mail in by pipe, tickets out through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from tests.helpers import make_mail, ticketgate, ticketgate_process, write_config


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path, database_url, "[processing]\nmax_attempts = 1\n")


def tickets(config: Path) -> list[dict]:
    run = ticketgate("tickets", "list", "--json", config=config)
    assert run.returncode == 0, run.stderr
    return run.json()


def test_a_piped_mail_becomes_a_ticket(config: Path, tmp_path: Path) -> None:
    mail = tmp_path / "m.eml"
    mail.write_bytes(
        make_mail(
            "[urgent] Payment plan ADD button does nothing", sender="Maria Lopez <maria@customer.example>"
        )
    )

    run = ticketgate_process("ingest", str(mail), config=config)  # as an MTA pipes it: a process

    assert run.returncode == 0, run.stderr
    assert "ticket SP-1" in run.stderr
    [ticket] = tickets(config)
    assert ticket["ref"] == "SP-1"
    assert ticket["title"] == "Payment plan ADD button does nothing"
    assert ticket["priority"] == "Urgent"
    assert ticket["category"] == "Technical Issues & Bugs"
    assert ticket["status"] == "Open"
    assert ticket["tier"] == "Free"
    assert ticket["requester"] == {"address": "maria@customer.example", "name": "Maria Lopez"}
    assert ticket["description"].startswith("When I click ADD on the payment plan page")


def test_stdin_with_envelope_recipient_tags(config: Path) -> None:
    run = ticketgate(
        "ingest",
        "--recipient",
        "support+billing@smilepass.example",
        "--sender",
        "ceo@bigcorp.example",
        config=config,
        stdin=make_mail("[urgent] Invoice is wrong", sender="CEO <ceo@bigcorp.example>"),
    )

    assert run.returncode == 0, run.stderr
    [ticket] = tickets(config)
    assert ticket["category"] == "Billing & Payments"
    assert ticket["tier"] == "Enterprise"
    # Staff see where each tag came from: the subject's `[urgent]` and the `+billing` address.
    shown = ticketgate("tickets", "show", ticket["ref"], "--json", config=config).json()
    tags = {(e["field"], e["new"]) for e in shown["events"] if e["kind"] == "tag"}
    assert tags == {("tag", "urgent"), ("sub-address", "billing")}
    text = ticketgate("tickets", "show", ticket["ref"], config=config).stdout
    assert "tag urgent (from the subject) by ceo@bigcorp.example" in text
    assert "tag billing (from the sub-address) by ceo@bigcorp.example" in text
    assert "created status: Open by" in text and "- ->" not in text


def test_ingest_stores_and_processes_in_one_attempt(config: Path, tmp_path: Path) -> None:
    # Stored already claimed by the run that processes it (one transaction, not a store and then a
    # claim): the row is done after one attempt, and the run reports the ticket, not "stored;
    # being processed by another worker".
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail("Export to CSV fails"))

    run = ticketgate("ingest", str(mail), config=config)

    assert run.returncode == 0, run.stderr
    assert "inbox 1: ticket SP-1" in run.stderr
    shown = ticketgate("inbox", "show", "1", config=config)
    assert "outcome: ticket   ticket: SP-1   attempts: 1" in shown.stdout


def test_not_a_mail_exits_65_and_stores_nothing(config: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    prose = tmp_path / "prose.txt"
    prose.write_bytes(b"this is just some text\nwith no header at all\n")

    assert ticketgate("ingest", str(empty), config=config).returncode == 65
    run = ticketgate("ingest", str(prose), config=config)
    assert run.returncode == 65
    assert "no header" in run.stderr
    assert tickets(config) == []


def test_worst_exit_code_wins_but_good_mail_is_kept(config: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(make_mail("Login loop"))
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"")

    run = ticketgate("ingest", str(good), str(bad), config=config)

    assert run.returncode == 65
    assert [t["title"] for t in tickets(config)] == ["Login loop"]


def test_mbox_batch(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "batch.mbox"
    box = mailbox.mbox(str(path))
    for n in range(3):
        box.add(make_mail(f"Problem number {n}"))
    box.flush()
    box.close()

    run = ticketgate("ingest", "--mbox", str(path), config=config)

    assert run.returncode == 0, run.stderr
    assert sorted(t["title"] for t in tickets(config)) == [f"Problem number {n}" for n in range(3)]


def test_same_mail_twice_gives_one_ticket(config: Path, tmp_path: Path) -> None:
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail("Card declined", message_id="<same-1@customer.example>"))
    # The copy that came another way has other trace headers and CRLF line ends: still the same mail.
    copy = tmp_path / "copy.eml"
    copy.write_bytes(
        b"Received: from relay.example by mx.example; Tue, 24 Nov 2026 10:00:00 +0000\r\n"
        + b"Delivered-To: support@smilepass.example\r\n"
        + mail.read_bytes().replace(b"\n", b"\r\n")
    )

    assert ticketgate("ingest", str(mail), config=config).returncode == 0
    second = ticketgate("ingest", str(copy), config=config)

    assert second.returncode == 0
    assert "duplicate" in second.stderr
    assert len(tickets(config)) == 1


def test_reused_message_id_with_other_content_is_a_second_ticket(config: Path, tmp_path: Path) -> None:
    first = tmp_path / "a.eml"
    first.write_bytes(make_mail("First problem", message_id="<reused@sloppy.example>"))
    second = tmp_path / "b.eml"
    second.write_bytes(make_mail("Second problem", message_id="<reused@sloppy.example>"))

    assert ticketgate("ingest", str(first), str(second), config=config).returncode == 0

    found = tickets(config)
    assert sorted(t["title"] for t in found) == ["First problem", "Second problem"]
    shown = ticketgate("tickets", "show", "SP-2", "--json", config=config).json()
    assert any(e["kind"] == "message_id_collision" for e in shown["events"])


def test_database_down_exits_75(tmp_path: Path) -> None:
    config = write_config(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/none")
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail())

    run = ticketgate("ingest", str(mail), config=config)

    assert run.returncode == 75
    assert "try again later" in run.stderr


def test_failed_processing_is_quarantined_then_retried(config: Path, tmp_path: Path) -> None:
    blob_dir = tmp_path / "blobs"
    blob_dir.write_text("a file where the blob folder should be")  # an operator's mistake
    mail = tmp_path / "m.eml"
    mail.write_bytes(_mail_with_pdf())

    run = ticketgate("ingest", str(mail), config=config)

    assert run.returncode == 0, run.stderr  # stored durably: the MTA's job is done
    assert tickets(config) == []
    listed = ticketgate("quarantine", "list", "--json", config=config).json()
    assert len(listed) == 1
    assert "cannot store blob" in listed[0]["reason"]
    shown = ticketgate("quarantine", "show", str(listed[0]["id"]), "--raw", config=config)
    assert "Log file attached" in shown.stdout

    blob_dir.unlink()
    retried = ticketgate("quarantine", "retry", config=config)

    assert retried.returncode == 0, retried.stderr
    [ticket] = tickets(config)
    assert ticket["title"] == "Log file attached"
    assert ticket["attachments"] == [{"filename": "app.pdf", "content_type": "application/pdf", "size": 19}]
    assert ticketgate("quarantine", "list", "--json", config=config).json() == []


def test_show_unknown_ticket(config: Path) -> None:
    run = ticketgate("tickets", "show", "SP-99", config=config)
    assert run.returncode == 1
    assert "no ticket SP-99" in run.stderr


def _mail_with_pdf() -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = "maria@customer.example"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = "Log file attached"
    msg["Message-ID"] = "<pdf-1@customer.example>"
    msg.set_content("See the attached export.")
    msg.add_attachment(b"%PDF-1.4\n%fake pdf\n", maintype="application", subtype="pdf", filename="app.pdf")
    return msg.as_bytes()
