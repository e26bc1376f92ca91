"""The families of real mail issue 23 named, end to end: mail goes in as `ticketgate ingest` takes it
(pipe intake, in-process, on SQLite), and what is checked is what staff see: the outcome, the tickets
and their descriptions, the messages' text, and the notifications' delivery state as `tickets show
--json` prints them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import make_mail
from tests.integration.test_real_mail_families import Desk

MARIA = "Maria Lopez <maria@customer.example>"


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    running = Desk(tmp_path)
    try:
        yield running
    finally:
        running.runtime.close()


def test_a_first_line_that_reads_like_a_date_stays_the_description(desk: Desk) -> None:
    body = (
        "42 the 2026. Thanks for the quick help.\n\n"
        "Jan Novák <jan@example.cz>, 01.11.2026 00:00 tarihinde şunu yazdı:\n"
        ">\n> Refund the payment please check again today and the card bank failed twice\narrived.\n>\n"
    )
    assert desk.ingest(make_mail("Refund", body, sender=MARIA)) == "ticket"
    [ticket] = desk.tickets()
    shown = desk.show(ticket["ref"])
    assert shown["description"] == "42 the 2026. Thanks for the quick help."
    assert shown["messages"][0]["text"] == "42 the 2026. Thanks for the quick help."


def test_inline_answers_keep_their_quotes_without_the_attribution_line(desk: Desk) -> None:
    body = (
        "Hi, my answers are below.\n\n"
        "On Mon, 30 Nov 2026 at 09:14, Ana <ana@smilepass.example> wrote:\n"
        "> Which browser?\nFirefox 133.\n\n> Which device?\nA Pixel 7.\n"
    )
    desk.ingest(make_mail("Card declined", body, sender=MARIA))
    [ticket] = desk.tickets()
    text = desk.show(ticket["ref"])["messages"][0]["text"]
    assert (
        text == "Hi, my answers are below.\n\n> Which browser?\nFirefox 133.\n\n> Which device?\nA Pixel 7."
    )


def test_a_mail_that_is_only_a_forward_describes_the_forwarded_mail(desk: Desk) -> None:
    body = (
        "---------- Forwarded message ---------\nFrom: Bank <noreply@bank.example>\n"
        "Date: Mon, 30 Nov 2026 at 09:14\nSubject: Payment failed\nTo: <maria@customer.example>\n\n"
        "Your payment of 40 EUR to SmilePass failed.\n\nYour Bank\n"
    )
    desk.ingest(make_mail("Fwd: Payment failed", body, sender=MARIA))
    [ticket] = desk.tickets()
    shown = desk.show(ticket["ref"])
    assert shown["description"] == "Your payment of 40 EUR to SmilePass failed.\n\nYour Bank"
    # The message keeps the whole forward: who sent the forwarded mail, and when.
    assert shown["messages"][0]["text"].startswith("---------- Forwarded message ---------\nFrom: Bank")


def test_decoration_under_the_last_line_is_not_in_the_description(desk: Desk) -> None:
    desk.ingest(make_mail("Login", "I cannot log in since today.\n\nMaria\nᐧ\n", sender=MARIA))
    [ticket] = desk.tickets()
    assert desk.show(ticket["ref"])["description"] == "I cannot log in since today.\n\nMaria"


def test_a_bare_mailer_daemon_notice_opens_no_ticket(desk: Desk) -> None:
    raw = (
        b"From: MAILER-DAEMON (Mail Delivery System)\r\nTo: support@smilepass.example\r\n"
        b"Subject: Your ticket\r\nMessage-ID: <n.3@relay.customer.example>\r\n\r\n"
        b"This is the mail system at host relay.customer.example.\r\n\r\n"
        b"<gone@customer.example>: host mx said: 550 5.1.1 User unknown\r\n"
    )
    assert desk.ingest(raw) == "bounce"
    assert desk.tickets() == []


def test_a_gateways_own_notice_returning_our_acknowledgement_marks_it_bounced(desk: Desk) -> None:
    # Given a ticket whose acknowledgement went out to Maria
    desk.ingest(make_mail(sender=MARIA))
    [ticket] = desk.tickets()
    [ack] = [n for n in desk.show(ticket["ref"])["notifications"] if n["template"] == "ticket_created"]
    # When her company's mail filter returns it, from an ordinary address, under the original subject
    returned = (
        f"From: SmilePass Support <support@smilepass.example>\r\nTo: maria@customer.example\r\n"
        f"Subject: [{ticket['ref']}] Payment plan ADD button does nothing\r\n"
        f"Message-ID: <{ack['message_id']}>\r\n\r\nWe received your request.\r\n"
    )
    notice = (
        "From: Secure Messaging <securemail@customer.example>\r\nTo: support@smilepass.example\r\n"
        f"Subject: [{ticket['ref']}] Payment plan ADD button does nothing\r\n"
        "Message-ID: <filter.77@customer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "The message below could not be delivered to maria@customer.example: mailbox unavailable.\r\n"
        f"--b\r\nContent-Type: message/rfc822\r\n\r\n{returned}\r\n--b--\r\n"
    ).encode()
    # Then it opens no ticket, and staff see the acknowledgement bounced
    assert desk.ingest(notice) == "bounce"
    assert [t["ref"] for t in desk.tickets()] == [ticket["ref"]]
    [ack] = [n for n in desk.show(ticket["ref"])["notifications"] if n["template"] == "ticket_created"]
    assert ack["status"] == "bounced"


def test_a_report_whose_status_part_header_is_damaged_opens_no_ticket(desk: Desk) -> None:
    raw = (
        b"From: Mail Delivery System <>\r\nTo: support@smilepass.example\r\nSubject: Your ticket\r\n"
        b"Message-ID: <d.9@mx.customer.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; boundary="in"'
        b"\r\n\r\n--in\r\nContent-Type: text/plain; charset=UFT-8;\r\n\r\nThe mailbox does not exist.\r\n\r\n"
        b"--in\r\nContent-Type: message/delivery-status charset=us-ascii\r\n\r\n"
        b"Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        b"Final-Recipient: rfc822; gone@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--in--\r\n"
    )
    assert desk.ingest(raw) == "bounce"
    assert desk.tickets() == []
