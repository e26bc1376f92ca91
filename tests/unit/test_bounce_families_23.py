"""Bounces of the families issue 23 named (SPEC §2, §7), each with examples written here and a bounded
hypothesis property, read through the real parser, `classify` and `read_bounce` as the pipeline calls
them, with no envelope (IMAP and pipe intake) and without the raw bytes, so that our own rules, not
flufl.bounce, must recognise them:

- a `From` that is a bare `MAILER-DAEMON (Mail Delivery System)`, no domain, or a name with `<>`;
- a mail gateway's own failure notice from an ordinary address, the failed mail attached;
- a `multipart/report` whose part headers are damaged (a lost semicolon, a misspelled charset, junk).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope
from gateway.mail.bounce import read_bounce
from gateway.mail.parse import parse_mail
from gateway.pipeline.classify import MailKind, classify
from tests.unit.test_quotes_properties import BOUNDED, EXAMPLES

OURS = GatewayAddresses(["support@smilepass.example"])
NO_ENVELOPE = Envelope(mail_from="", rcpt_tos=(), source="imap:support")
OUR_MAIL = (
    "From: SmilePass Support <support@smilepass.example>\r\nTo: {to}\r\n"
    "Subject: [SP-9] Your ticket\r\nMessage-ID: <tg.SP-9.o31.ab12cd34ef56@smilepass.example>\r\n"
    "\r\nHello, your ticket SP-9 was updated.\r\n"
)


# A third of the property files' examples: the families are narrow, and the suite's time is shared
# (TICKETGATE_PROPERTY_EXAMPLES raises both for a longer run).
FAMILY = settings(BOUNDED, max_examples=max(EXAMPLES // 3, 30))


def kind(raw: bytes) -> MailKind:
    return classify(parse_mail(raw), NO_ENVELOPE, ours=OURS).kind


def failed(raw: bytes) -> tuple[str, ...]:
    return read_bounce(parse_mail(raw), NO_ENVELOPE, ours=OURS).recipients


def plain_mail(sender: str, subject: str, body: str) -> bytes:
    head = f"From: {sender}\r\nTo: support@smilepass.example\r\nSubject: {subject}\r\nMessage-ID: <n.1@x>\r\n"
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode()


# --- a bare MAILER-DAEMON, no domain ---------------------------------------------------------------------

BARE_SENDERS = [
    "MAILER-DAEMON (Mail Delivery System)",
    "MAILER-DAEMON",
    "Mail Delivery Subsystem <MAILER-DAEMON>",
    "mailer_daemon (Mail Delivery System)",
    "postmaster (Mail Delivery System)",
    "Mail Delivery System <>",
    '"Mail Delivery System" <>',
]
PLAIN_NOTICE = (
    "This is the mail system at host relay.kunde.example.\n\n"
    "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
    "<gone@kunde.example>: host mx.kunde.example said: 550 5.1.1 User unknown\n"
)


@pytest.mark.parametrize("sender", BARE_SENDERS)
def test_a_notice_from_a_mail_system_without_a_usable_address_is_a_bounce(sender: str) -> None:
    raw = plain_mail(sender, "Your ticket SP-9", PLAIN_NOTICE)
    assert kind(raw) is MailKind.BOUNCE
    assert failed(raw) == ("gone@kunde.example",)


@pytest.mark.parametrize("sender", ["Jan Novák", "Jan Novák <>", "jan.novak (Jan Novák)"])
def test_a_person_without_a_usable_address_still_writes_a_ticket(sender: str) -> None:
    raw = plain_mail(sender, "Refund", "The refund failed twice, please check.\n")
    assert kind(raw) is MailKind.NORMAL


@FAMILY
@given(
    st.sampled_from(["MAILER-DAEMON", "mailer-daemon", "Mailer_Daemon", "MAILERDAEMON", "mailer.daemon"]),
    st.sampled_from(["", " (Mail Delivery System)", " (Mail Delivery Subsystem)", " (MTA)"]),
    st.sampled_from(["Undelivered Mail Returned to Sender", "Your ticket SP-9", "", "Re: Refund"]),
)
def test_any_bare_mailer_daemon_is_a_bounce_whatever_the_subject(
    local: str, comment: str, subject: str
) -> None:
    assert kind(plain_mail(local + comment, subject, PLAIN_NOTICE)) is MailKind.BOUNCE


# --- a mail gateway's own failure notice, the failed mail attached -------------------------------------


def gateway_notice(
    sender: str, subject: str, words: str, attached: str, to: str = "support@smilepass.example"
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <n.2@filter.partner.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n"
        f"--b\r\nContent-Type: message/rfc822\r\n\r\n{attached}\r\n--b--\r\n"
    ).encode()


GATEWAY_SENDERS = [
    "Secure Messaging <securemail@partner.example>",
    "IT Service Desk <it@partner.example>",
    "Contoso Filter <filter-notify@partner.example>",
    "noc@partner.example",
]
GATEWAY_WORDS = [
    "The message below could not be delivered to ops@partner.example: mailbox unavailable.",
    "Delivery failed: the recipient ops@partner.example does not exist.",
    "Your message was not delivered to ops@partner.example because the mailbox is full.",
    "Die Nachricht konnte nicht zugestellt werden: ops@partner.example ist unzustellbar.",
]


@pytest.mark.parametrize("sender", GATEWAY_SENDERS)
@pytest.mark.parametrize("words", GATEWAY_WORDS)
def test_a_gateways_notice_returning_our_mail_is_a_bounce(sender: str, words: str) -> None:
    raw = gateway_notice(sender, "[SP-9] Your ticket", words, OUR_MAIL.format(to="ops@partner.example"))
    assert kind(raw) is MailKind.BOUNCE


def test_a_gateways_notice_names_the_failed_recipient_in_its_own_words() -> None:
    words = "The message below could not be delivered to ops@partner.example: mailbox unavailable."
    raw = gateway_notice(
        GATEWAY_SENDERS[1], "[SP-9] Your ticket", words, OUR_MAIL.format(to="ops@partner.example")
    )
    assert failed(raw) == ("ops@partner.example",)


def test_a_notice_returning_a_message_to_its_own_sender_is_a_bounce_for_any_sender() -> None:
    """Not only our mail: a message that comes back to whoever sent it (a list's bounce address too)."""
    original = (
        "From: list-bounces@lists.example\r\nReturn-Path: <list-bounces@lists.example>\r\n"
        "To: member@partner.example\r\nSubject: digest\r\n\r\nhello\r\n"
    )
    raw = gateway_notice(
        GATEWAY_SENDERS[0], "digest", GATEWAY_WORDS[1], original, to="list-bounces@lists.example"
    )
    assert kind(raw) is MailKind.BOUNCE


GATEWAY_LOOK_ALIKES = [
    # A customer forwarding our notification they received, asking about delivery.
    (
        "Ana <ana@kunde.example>",
        "Fwd: [SP-9] Your ticket",
        "Was this undelivered? It reached me late.",
        "ana@kunde.example",
    ),
    # A customer attaching their own earlier mail that "could not be delivered" to us.
    (
        "Ana <ana@kunde.example>",
        "Refund",
        "My mail below could not be delivered, the refund is still missing.",
        None,
    ),
]


@pytest.mark.parametrize(("sender", "subject", "words", "attached_to"), GATEWAY_LOOK_ALIKES)
def test_a_person_attaching_a_mail_and_writing_about_delivery_gets_a_ticket(
    sender: str, subject: str, words: str, attached_to: str | None
) -> None:
    if attached_to is not None:
        attached = OUR_MAIL.format(to=attached_to)
    else:
        attached = (
            "From: Ana <ana@kunde.example>\r\nTo: support@smilepass.example\r\nSubject: Refund\r\n\r\nHi\r\n"
        )
    assert kind(gateway_notice(sender, subject, words, attached)) is MailKind.NORMAL


def test_an_attached_mail_without_delivery_words_is_a_customers_mail() -> None:
    raw = gateway_notice(
        "IT Service Desk <it@partner.example>",
        "[SP-9] Your ticket",
        "Please see the mail below, we have a question about it.",
        OUR_MAIL.format(to="ops@partner.example"),
    )
    assert kind(raw) is MailKind.NORMAL


@FAMILY
@given(
    st.sampled_from(GATEWAY_SENDERS),
    st.sampled_from(GATEWAY_WORDS),
    st.sampled_from(["[SP-9] Your ticket", "Re: [SP-9] Your ticket", "Notification", "Message blocked"]),
    st.sampled_from(["ops@partner.example", "a.b@partner.example", "x+y@partner.example"]),
)
def test_any_gateway_notice_returning_our_mail_is_a_bounce(
    sender: str, words: str, subject: str, to: str
) -> None:
    assert kind(gateway_notice(sender, subject, words, OUR_MAIL.format(to=to))) is MailKind.BOUNCE


# --- a multipart/report whose part headers are damaged -------------------------------------------------

DSN_FIELDS = (
    "Reporting-MTA: dns; mx.kunde.example\r\n\r\n"
    "Final-Recipient: rfc822; gone@kunde.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
)


def damaged_report(top: str, text_type: str, status_type: str, returned_type: str) -> bytes:
    return (
        "From: Mail Delivery System <>\r\nTo: support@smilepass.example\r\nSubject: [SP-9] Your ticket\r\n"
        "Message-ID: <d.1@mx.kunde.example>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: {top}; boundary="in"\r\n\r\n'
        f"--in\r\nContent-Type: {text_type}\r\n\r\nThe recipient's mailbox does not exist.\r\n\r\n"
        f"--in\r\nContent-Type: {status_type}\r\n\r\n{DSN_FIELDS}\r\n"
        f"--in\r\nContent-Type: {returned_type}\r\n\r\n"
        f"{OUR_MAIL.format(to='gone@kunde.example')}\r\n--in--\r\n"
    ).encode()


TOPS = ["multipart/report", "multipart/report; report-type=delivery-status", "multipart/report; report-type="]
TEXT_TYPES = [
    "text/plain; charset=UTF-8;",
    "text/plain; charset=UFT-8;",
    "text/plain charset=utf-8",
    "text/plain;;",
]
STATUS_TYPES = [
    "message/delivery-status; charset=UFT-8;",
    "message/delivery-status charset=us-ascii",
    'Message/Delivery-Status ;charset="us-ascii',
    "message/delivery-status; name=",
    "text/plain; charset=us-ascii",  # mislabelled altogether: its fields still say what it is
]
RETURNED_TYPES = ["message/rfc822; charset=UFT-8;", "text/rfc822-headers charset=us-ascii", "message/rfc822"]


@pytest.mark.parametrize("status_type", STATUS_TYPES)
@pytest.mark.parametrize("top", TOPS)
def test_a_report_with_damaged_part_headers_is_a_bounce_and_its_fields_are_read(
    top: str, status_type: str
) -> None:
    raw = damaged_report(top, TEXT_TYPES[1], status_type, RETURNED_TYPES[0])
    assert kind(raw) is MailKind.BOUNCE
    report = read_bounce(parse_mail(raw), NO_ENVELOPE, ours=OURS)
    assert (report.recipients, report.permanent) == (("gone@kunde.example",), True)


def test_a_report_whose_status_part_lost_its_semicolon_gives_the_status_code() -> None:
    raw = damaged_report(TOPS[0], TEXT_TYPES[0], STATUS_TYPES[1], RETURNED_TYPES[2])
    assert read_bounce(parse_mail(raw), NO_ENVELOPE, ours=OURS).status == "5.1.1"


@FAMILY
@given(
    st.sampled_from(TOPS),
    st.sampled_from(TEXT_TYPES),
    st.sampled_from(STATUS_TYPES),
    st.sampled_from(RETURNED_TYPES),
)
def test_any_damage_to_a_reports_part_headers_leaves_it_a_bounce(
    top: str, text_type: str, status_type: str, returned_type: str
) -> None:
    raw = damaged_report(top, text_type, status_type, returned_type)
    assert kind(raw) is MailKind.BOUNCE
    assert failed(raw) == ("gone@kunde.example",)
