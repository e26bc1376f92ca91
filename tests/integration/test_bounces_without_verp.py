"""Bounces that come back to `support@` itself, not to the VERP bounce address (SPEC §7): over real
SMTP into `ticketgate serve`, matched to the notification by the returned Message-ID, or else by the
failed recipient. No ticket is opened, the notification is `bounced`, the address gets no more mail
until it writes again, and the ticket's events say so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_mail
from tests.integration.test_conversations import ANA, MARIA, SUPPORT, TRIAGE, Desk, events, reply_to

MARIA_ADDRESS = "maria@customer.example"


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Iterator[Desk]:
    running = Desk(tmp_path, database_url)
    try:
        yield running
    finally:
        running.stop()


def german_exchange_ndr(returned: EmailMessage) -> bytes:
    """An Exchange non-delivery report in German, the returned mail attached, no DSN part."""
    headers = "".join(f"{name}: {value}\r\n" for name, value in returned.items())
    return (
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae@customer.example>\r\n"
        f"To: {SUPPORT}\r\n"
        f"Subject: Unzustellbar: {returned['Subject']}\r\n"
        "Date: Tue, 01 Dec 2026 09:00:00 +0100\r\n"
        "Message-ID: <ndr.7781@mail.customer.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="ndr"\r\n'
        "\r\n"
        "--ndr\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen:\r\n"
        "\r\n"
        f"{MARIA_ADDRESS}\r\n"
        "Das Postfach des Empfängers existiert nicht.\r\n"
        "\r\n"
        "Diagnoseinformationen für Administratoren:\r\n"
        "Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\r\n"
        "\r\n"
        "--ndr\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        f"{headers}\r\n"
        "(body not returned)\r\n"
        "--ndr--\r\n"
    ).encode()


def spanish_gateway_notice() -> bytes:
    """A mail gateway's own plain-text notice in Spanish: no DSN part, no returned message, only the
    failed address."""
    return (
        "From: Pasarela de correo <pasarela@gw.customer.example>\r\n"
        f"To: {SUPPORT}\r\n"
        "Subject: No se puede entregar: su mensaje\r\n"
        "Date: Tue, 01 Dec 2026 09:05:00 +0100\r\n"
        "Message-ID: <gw.99@gw.customer.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Error en la entrega a estos destinatarios o grupos:\r\n"
        "\r\n"
        f"  {MARIA_ADDRESS}\r\n"
        "  El buzón no existe. 550 5.1.1 usuario desconocido\r\n"
    ).encode()


def wait_for_event(desk: Desk, ref: str, kind: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        ticket = desk.show(ref)
        if events(ticket, kind):
            return ticket
        assert time.monotonic() < deadline, f"no {kind} event on {ref}:\n{desk.output()}"
        time.sleep(0.2)


def open_ticket_with_ack(desk: Desk) -> tuple[str, EmailMessage]:
    desk.send(make_mail("Payment plan ADD button does nothing", sender=MARIA))
    [ticket] = desk.wait_count(1)
    return ticket["ref"], desk.notification(ticket["ref"], "ticket_created", MARIA_ADDRESS)


def assert_marked_and_silenced(desk: Desk, ref: str, matched_by: str) -> None:
    ticket = wait_for_event(desk, ref, "bounce")
    # No ticket was opened for the bounce, and the ticket's status did not change.
    assert [t["ref"] for t in desk.tickets()] == [ref]
    assert ticket["status"] == "Open" and len(ticket["messages"]) == 1
    [ack] = [n for n in ticket["notifications"] if n["template"] == "ticket_created"]
    assert ack["status"] == "bounced"
    [event] = events(ticket, "bounce")
    assert event["old"] == "ticket_created"
    assert MARIA_ADDRESS in event["new"] and "5.1.1" in event["new"] and matched_by in event["new"]

    # Staff answer her: the answer is not sent to the undeliverable address, and staff see why.
    staff_address = reply_to(desk.notification(ref, "staff_new_ticket", TRIAGE))
    desk.send(make_mail("x", "Which browser is that?\n", sender=ANA, to=staff_address), to=staff_address)
    ticket = desk.wait(ref, messages=2)
    assert not [n for n in ticket["notifications"] if n["template"] == "staff_reply"]
    skipped = [e["new"] for e in events(ticket, "notification_skipped")]
    assert any("staff_reply" in why and "undeliverable" in why for why in skipped), skipped


def test_a_bounce_to_support_is_matched_by_the_returned_message_id(desk: Desk) -> None:
    ref, ack = open_ticket_with_ack(desk)
    desk.send(german_exchange_ndr(ack), mail_from="")
    assert_marked_and_silenced(desk, ref, "Message-ID")


def test_a_bounce_naming_only_the_failed_address_is_matched_by_recipient(desk: Desk) -> None:
    ref, _ack = open_ticket_with_ack(desk)
    desk.send(spanish_gateway_notice(), mail_from="")
    assert_marked_and_silenced(desk, ref, "failed recipient")
