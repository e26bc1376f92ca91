"""Reading bounces (SPEC §7 "Bounces"): who failed, how, and which of our mails it was.

Each MTA's format has a realistic sample in tests/data/classify/; every mail goes through the
real parser (`parse_mail`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.bounce import BounceReport, read_bounce
from gateway.mail.parse import parse_mail

DATA = Path(__file__).resolve().parent.parent / "data" / "classify"
OURS = GatewayAddresses(["support@smilepass.example"])
NO_ENVELOPE = Envelope(mail_from="", rcpt_tos=(), source="imap:support")


def load(name: str) -> ParsedMail:
    return parse_mail((DATA / name).read_bytes())


def bounced_to(rcpt: str) -> Envelope:
    return Envelope(mail_from="", rcpt_tos=(rcpt,), source="smtp")


def read(parsed: ParsedMail, envelope: Envelope = NO_ENVELOPE) -> BounceReport:
    return read_bounce(parsed, envelope, ours=OURS)


def text_mail(body: str, *headers: str, subject: str = "Undelivered Mail Returned to Sender") -> ParsedMail:
    head = [
        "From: Mail Delivery System <MAILER-DAEMON@mx.kunde.example>",
        "To: support+bounce-9.Xy7@smilepass.example",
        f"Subject: {subject}",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return parse_mail(("\n".join(head) + "\n\n" + body).encode())


def dsn(*recipient_blocks: str) -> ParsedMail:
    """A multipart/report DSN with the given per-recipient blocks."""
    blocks = "\n\n".join(recipient_blocks)
    raw = (
        "From: MAILER-DAEMON@mx.kunde.example\n"
        "To: support+bounce-9.Xy7@smilepass.example\n"
        "Subject: Delivery Status Notification\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\n\n'
        "--b1\nContent-Type: text/plain\n\nSee the report.\n\n"
        "--b1\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.kunde.example\n\n{blocks}\n\n"
        "--b1--\n"
    )
    return parse_mail(raw.encode())


# --- one sample per MTA --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "envelope", "expected"),
    [
        (
            "postfix_dsn.eml",
            bounced_to("support+bounce-17.ab12cd@smilepass.example"),
            BounceReport(
                # The DSN names the address we sent to (Original-Recipient), not the alias target.
                recipients=("billing@ana-kunde.example",),
                status="5.1.1",
                permanent=True,
                diagnostic="550 5.1.1 <kasia@ana-kunde.example>: Recipient address rejected: "
                "User unknown in virtual mailbox table",
                original_message_id="tg.17.8f3a9c@smilepass.example",
                verp_detail="bounce-17.ab12cd",
            ),
        ),
        (
            "exim_bounce.eml",
            bounced_to("support+bounce-23.k9Zq1x@smilepass.example"),
            BounceReport(
                recipients=("jonas.weber@kundenhaus.example",),
                status="5.2.2",
                permanent=True,
                diagnostic="550 5.2.2 <jonas.weber@kundenhaus.example>: "
                "Mailbox quota exceeded, account disabled",
                original_message_id="tg.23.c0ffee@smilepass.example",
                verp_detail="bounce-23.k9Zq1x",
            ),
        ),
        (
            "qmail_bounce.eml",
            NO_ENVELOPE,  # the VERP detail comes from Delivered-To / To
            BounceReport(
                recipients=("p.nowak@ostkueste-net.example",),
                status="5.1.1",
                permanent=True,
                diagnostic="550 5.1.1 <p.nowak@ostkueste-net.example>: "
                "Recipient address rejected: User unknown",
                original_message_id="tg.31.feed01@smilepass.example",
                verp_detail="bounce-31.Zk2mQp",
            ),
        ),
        (
            "exchange_ndr.eml",
            NO_ENVELOPE,
            BounceReport(
                recipients=("mark.olsen@contoso.example",),
                status="5.1.1",
                permanent=True,
                diagnostic="550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
                original_message_id="tg.44.0ddba11@smilepass.example",
                verp_detail="bounce-44.Yt7Pq2",
            ),
        ),
        (
            "o365_ndr.eml",
            bounced_to("support+bounce-52.Hq8sLm@smilepass.example"),
            BounceReport(
                recipients=("lena.berg@fabrikam.example",),
                status="5.1.10",
                permanent=True,
                diagnostic="550 5.1.10 RESOLVER.ADR.RecipientNotFound; "
                "Recipient lena.berg@fabrikam.example not found by SMTP address lookup",
                # No returned message: the bounce's In-Reply-To names it.
                original_message_id="tg.52.be11e5@smilepass.example",
                verp_detail="bounce-52.Hq8sLm",
            ),
        ),
        (
            "gmail_bounce.eml",
            bounced_to("support+bounce-61.Rw3nXa@smilepass.example"),
            BounceReport(
                recipients=("rafael.costa.smile@gmail.com",),
                status="5.1.1",
                permanent=True,
                diagnostic="550 5.1.1 The email account that you tried to reach does not exist. Please try "
                "double-checking the recipient's email address for typos or unnecessary spaces. For more "
                "information, go to https://support.google.com/mail/?p=NoSuchUser "
                "41be03b00d2f7-af3b1a2c5d4si1234567a12.123 - gsmtp",
                original_message_id="tg.61.a11ce5@smilepass.example",
                verp_detail="bounce-61.Rw3nXa",
            ),
        ),
    ],
)
def test_each_mta_format_is_read(name: str, envelope: Envelope, expected: BounceReport) -> None:
    assert read(load(name), envelope) == expected


def test_a_dsn_whose_part_the_parser_did_not_keep_is_read_from_the_notice_text() -> None:
    parsed = load("postfix_dsn.eml")
    without_dsn = dataclasses.replace(
        parsed,
        attachments=tuple(a for a in parsed.attachments if a.content_type != "message/delivery-status"),
    )
    report = read(without_dsn)
    # Postfix's own words name the alias target it tried.
    assert report.recipients == ("kasia@ana-kunde.example",)
    assert (report.status, report.permanent) == ("5.1.1", True)
    assert report.diagnostic == (
        "550 5.1.1 <kasia@ana-kunde.example>: "
        "Recipient address rejected: User unknown in virtual mailbox table"
    )


def test_delivery_status_fields_inline_in_the_text_are_read() -> None:
    body = (
        "Your message could not be delivered.\n\n"
        "Reporting-MTA: dns; mx.kunde.example\n\n"
        "Final-Recipient: rfc822; tomas@kunde.example\n"
        "Action: failed\n"
        "Status: 5.7.1\n"
        "Diagnostic-Code: smtp; 554 5.7.1 Message rejected as spam\n"
    )
    report = read(text_mail(body))
    assert report.recipients == ("tomas@kunde.example",)
    assert (report.status, report.permanent, report.diagnostic) == (
        "5.7.1",
        True,
        "554 5.7.1 Message rejected as spam",
    )


# A failed recipient whose Diagnostic-Code names its type and nothing else.
_QUIET = (
    "Final-Recipient: rfc822; quiet@kunde.example\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; "
)

# --- DSN semantics -------------------------------------------------------------------------------


def test_a_delay_warning_is_not_permanent() -> None:
    report = read(
        dsn(
            "Final-Recipient: rfc822; ana@kunde.example\nAction: delayed\nStatus: 4.4.1\n"
            "Diagnostic-Code: smtp; 451 4.4.1 Connection timed out\n"
            "Will-Retry-Until: Fri, 21 Mar 2025 10:00:00 +0000"
        )
    )
    assert report == dataclasses.replace(
        report,
        recipients=("ana@kunde.example",),
        status="4.4.1",
        permanent=False,
        diagnostic="451 4.4.1 Connection timed out",
    )


def test_a_success_notice_reports_no_failure() -> None:
    report = read(dsn("Final-Recipient: rfc822; ana@kunde.example\nAction: delivered\nStatus: 2.0.0"))
    assert (report.recipients, report.status, report.permanent) == ((), None, False)


def test_when_some_failed_for_good_only_those_are_reported() -> None:
    report = read(
        dsn(
            "Final-Recipient: rfc822; slow@kunde.example\nAction: delayed\nStatus: 4.2.2",
            "Final-Recipient: rfc822; gone@kunde.example\nAction: failed\nStatus: 5.1.1",
            "Final-Recipient: rfc822; also-gone@kunde.example\nAction: failed\nStatus: 5.2.1",
        )
    )
    assert report.recipients == ("gone@kunde.example", "also-gone@kunde.example")
    assert (report.status, report.permanent) == ("5.1.1", True)


def test_status_may_come_from_the_diagnostic_and_an_empty_diagnostic_is_none() -> None:
    report = read(
        dsn(
            "Final-Recipient: RFC822; <gone@kunde.example>\nAction: failed\n"
            "Diagnostic-Code: X-Postfix; 550-5.1.1 no such user",
            _QUIET,
        )
    )
    assert report.recipients == ("gone@kunde.example", "quiet@kunde.example")
    assert (report.status, report.diagnostic) == ("5.1.1", "550-5.1.1 no such user")
    quiet = read(dsn(_QUIET))
    assert quiet.diagnostic is None


def test_failed_without_any_code_is_permanent() -> None:
    assert read(dsn("Final-Recipient: rfc822; gone@kunde.example\nAction: failed")).permanent


def test_our_own_addresses_are_never_reported_as_failed() -> None:
    report = read(
        dsn(
            "Final-Recipient: rfc822; support@smilepass.example\nAction: failed\nStatus: 5.1.1",
            "Final-Recipient: rfc822; Gone@kunde.example\nAction: failed\nStatus: 5.1.1",
            "Final-Recipient: rfc822; gone@kunde.example\nAction: failed\nStatus: 5.1.1",
        )
    )
    assert report.recipients == ("Gone@kunde.example",)


# --- non-standard wording ------------------------------------------------------------------------


def test_sendmail_notice_text() -> None:
    body = (
        "The original message was received at Mon, 17 Mar 2025 10:03:47 +0100\n"
        "from mx1.smilepass.example [198.51.100.7]\n\n"
        "   ----- The following addresses had permanent fatal errors -----\n"
        "<edwin@kunde.example>\n"
        "    (reason: 553 5.3.0 <edwin@kunde.example>... Unknown E-Mail Address)\n\n"
        "   ----- Transcript of session follows -----\n"
        "... while talking to mail.kunde.example.:\n"
        ">>> DATA\n<<< 553 5.3.0 <edwin@kunde.example>... Unknown E-Mail Address\n"
    )
    report = read(text_mail(body, subject="Returned mail: see transcript for details"))
    assert report.recipients == ("edwin@kunde.example",)
    assert (report.status, report.permanent) == ("5.3.0", True)
    assert report.diagnostic == "553 5.3.0 <edwin@kunde.example>... Unknown E-Mail Address"


def test_exim_delay_warning_is_not_permanent() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its\n"
        "recipients after more than 24 hours on the queue on mx.kunde.example.\n\n"
        "The message identifier is:     1tq3Xa-0003Bc-2P\n\n"
        "The address(es) concerned:\n\n"
        "  slow@kunde.example\n"
        "    host mail.kunde.example [203.0.113.9]: 451 4.3.0 Temporary lookup failure\n\n"
        "No action is required on your part. Delivery attempts will continue for\n"
        "some time, and this warning may be repeated at intervals if the message\n"
        "remains undelivered.\n"
    )
    report = read(text_mail(body, subject="Warning: message 1tq3Xa-0003Bc-2P delayed 24 hours"))
    assert report.recipients == ("slow@kunde.example",)
    assert (report.status, report.permanent) == ("4.3.0", False)


def test_a_basic_reply_code_decides_permanence_and_addresses_are_not_status_codes() -> None:
    body = (
        "This is the mail system at host mx.kunde.example.\n\n"
        "<gone@kunde.example>: host 10.2.4.5[10.2.4.5] said: 550 Mailbox unavailable\n"
        "    (in reply to RCPT TO command)\n"
    )
    report = read(text_mail(body))
    assert report.recipients == ("gone@kunde.example",)
    assert (report.status, report.permanent, report.diagnostic) == (None, True, "550 Mailbox unavailable")


def test_qmail_says_permanent_in_words() -> None:
    body = (
        "Hi. This is the qmail-send program at mx.kunde.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<gone@kunde.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n"
    )
    report = read(text_mail(body, subject="failure notice"))
    assert report.recipients == ("gone@kunde.example",)
    assert report.permanent
    assert report.status == "5.1.1"


def test_permanent_in_words_without_any_code() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  gone@kunde.example\n    Unrouteable address\n"
    )
    report = read(text_mail(body, subject="Mail delivery failed: returning message to sender"))
    assert (report.recipients, report.status, report.permanent) == (("gone@kunde.example",), None, True)
    # Without the words it is still a failure notice, so permanent: only a notice that calls itself
    # a delay ("not yet been delivered", "will keep trying") is not.
    plain = read(text_mail(body.replace("This is a permanent error. ", "")))
    assert (plain.recipients, plain.permanent) == (("gone@kunde.example",), True)
    delayed = body.replace("This is a permanent error. ", "").replace(
        "could not be delivered", "has not yet been delivered"
    )
    assert read(text_mail(delayed + "Delivery attempts will continue.\n")).permanent is False


def test_the_returned_message_is_not_read_for_recipients() -> None:
    body = (
        "This message was created automatically by mail delivery software.\n\n"
        "A message that you sent could not be delivered to one or more of its\n"
        "recipients. This is a permanent error. The following address(es) failed:\n\n"
        "  gone@kunde.example\n    Unrouteable address\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        "From: SmilePass Support <support@smilepass.example>\n"
        "To: gone@kunde.example, other@kunde.example\n"
        "Message-ID: <tg.9.abc@smilepass.example>\n\n"
        "<someone@kunde.example> wrote something.\n"
    )
    report = read(text_mail(body, subject="Mail delivery failed: returning message to sender"))
    assert report.recipients == ("gone@kunde.example",)
    assert report.permanent
    assert report.original_message_id == "tg.9.abc@smilepass.example"


# --- which of our mails it was -------------------------------------------------------------------


def test_the_verp_bounce_address_is_preferred_over_other_sub_addresses() -> None:
    parsed = text_mail(
        "x", "Delivered-To: support+bounce-12.Qq9@smilepass.example", "Cc: support+billing@smilepass.example"
    )
    envelope = Envelope(mail_from="", rcpt_tos=("support+billing@smilepass.example",), source="lmtp")
    assert read(parsed, envelope).verp_detail == "bounce-12.Qq9"


def test_any_detail_of_ours_when_there_is_no_verp_address() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.kunde.example\n"
        b"To: Support <support+billing@smilepass.example>\nSubject: x\n\nx\n"
    )
    assert read(parse_mail(raw)).verp_detail == "billing"


def test_no_detail_when_nothing_of_ours_has_one() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.kunde.example\nTo: support@smilepass.example, "
        b"list+bounce-1.x@other.example\nSubject: x\n\nx\n"
    )
    report = read(
        parse_mail(raw), Envelope(mail_from="", rcpt_tos=("support@smilepass.example",), source="smtp")
    )
    assert report.verp_detail is None


def test_no_original_message_id_when_the_bounce_does_not_say() -> None:
    report = read(text_mail("<gone@kunde.example>: host mx said: 550 5.1.1 no such user\n"))
    assert report.original_message_id is None


def test_a_mail_that_is_no_bounce_reports_nothing() -> None:
    report = read(load("customer_question.eml"))
    assert report == BounceReport(
        recipients=(),
        status=None,
        permanent=False,
        diagnostic=None,
        original_message_id=None,
        verp_detail=None,
    )


# --- the corpus bounces --------------------------------------------------------------------------

_GMAIL_550 = (
    "550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 "
    "double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. "
    "Learn more at 550 5.1.1 http://mail.google.com/support/bin/answer.py?answer=6596 41si5422799iwn.27"
)


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        (
            "multipart_report_emails/multi_address_bounce1.eml",
            BounceReport(
                recipients=(
                    "bbbbvhvbbvkjbhfbvbvjhb@gmail.com",
                    "bscdbcjhasbcjhbdscbhbsdhcbj@gmail.com",
                    "egyfefsdvsfvvhjsd@gmail.com",
                    "kfhejkfbsjkjsbhds@gmail.com",
                    "qfvhgsvhgsduiohncdhcvhsdfvsfygusd@gmail.com",
                ),
                status="5.1.1",
                permanent=True,
                diagnostic=_GMAIL_550,
                original_message_id="118707422.15521266992174819.JavaMail.root@lvmail01",
                verp_detail=None,
            ),
        ),
        (
            "multipart_report_emails/multipart_report_multiple_status.eml",
            BounceReport(
                recipients=("u@ci.com",),
                status="5.3.0",
                permanent=True,
                diagnostic=None,
                original_message_id="4c2a146147ac8_61ff157c4ec1652df@s.h.c.mail",
                verp_detail=None,
            ),
        ),
        (
            "multipart_report_emails/report_422.eml",
            BounceReport(
                recipients=("fraser@oooooooo.com.au",),
                status="4.2.2",
                permanent=False,
                diagnostic="452 4.2.2 <fraser@oooooooo.com.au>... Mailbox full",
                original_message_id="15655788.13.1200472642578.JavaMail.Administrator@mail.ttttt.com.au",
                verp_detail=None,
            ),
        ),
        (
            "multipart_report_emails/report_530.eml",
            BounceReport(
                recipients=("edwin@zzzzzzz.com",),
                status="5.3.0",
                permanent=True,
                diagnostic="553 5.3.0 <edwin@zzzzzzz.com>... Unknown E-Mail Address",
                original_message_id="200712232303.lBNN3jDq002941@mail12.rrrr.com.au",
                verp_detail=None,
            ),
        ),
        (
            "mime_emails/raw_email_with_mimepart_without_content_type.eml",
            BounceReport(
                recipients=("larose.julie@courrier.uqam.ca",),
                status="4.5.0",
                permanent=False,
                diagnostic=None,
                original_message_id="89d7557c0610181510r6fa5ebd8n66a7deec71ade118@mail.gmail.com",
                verp_detail=None,
            ),
        ),
    ],
)
def test_corpus_bounces_are_read(corpus_dir: Path, relative: str, expected: BounceReport) -> None:
    path = corpus_dir / "mail-gem/spec/fixtures/emails" / relative
    assert read(parse_mail(path.read_bytes())) == expected
