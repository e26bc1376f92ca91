"""Classification of automated mail and loop protection (SPEC §2 "Automated mail", §7 "Loop protection").

Every mail goes through the real parser (`parse_mail`), from a test mail in tests/data/classify/,
a small mail written here, or the shared corpus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.parse import parse_mail
from gateway.pipeline.classify import Classification, MailKind, classify, should_notify

DATA = Path(__file__).resolve().parent.parent / "data" / "classify"
OURS = GatewayAddresses(["support@smilepass.example", "billing@smilepass.example"])

# IMAP and pipe intake know no envelope: an empty mail_from there means "unknown".
NO_ENVELOPE = Envelope(mail_from="", rcpt_tos=(), source="imap:support")


def smtp(mail_from: str, *rcpt_tos: str) -> Envelope:
    return Envelope(mail_from=mail_from, rcpt_tos=rcpt_tos or ("support@smilepass.example",), source="smtp")


def load(name: str) -> ParsedMail:
    return parse_mail((DATA / name).read_bytes())


def mail(
    *headers: str, subject: str = "Card declined at checkout", body: str = "Hello, my card is declined."
) -> ParsedMail:
    """A small plain-text mail from a customer (unless a From line is given) with extra header lines."""
    sender = (
        []
        if any(line.startswith("From:") for line in headers)
        else ["From: Ana Kovac <ana.kovac@kunde.example>"]
    )
    head = [
        *sender,
        "To: support@smilepass.example",
        f"Subject: {subject}",
        "Date: Mon, 17 Mar 2025 09:00:00 +0100",
        "Message-ID: <m1@kunde.example>",
        *headers,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return parse_mail(("\r\n".join(head) + "\r\n\r\n" + body + "\r\n").encode())


def from_(address: str) -> str:
    return f"From: Someone <{address}>"


def run(parsed: ParsedMail, envelope: Envelope = NO_ENVELOPE) -> Classification:
    return classify(parsed, envelope, ours=OURS)


# --- realistic mails, one per kind of sender ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "rule"),
    [
        ("postfix_dsn.eml", MailKind.BOUNCE, "dsn-report"),
        ("exim_bounce.eml", MailKind.BOUNCE, "mailer-daemon"),
        ("qmail_bounce.eml", MailKind.BOUNCE, "mailer-daemon"),
        ("gmail_bounce.eml", MailKind.BOUNCE, "mailer-daemon"),
        ("o365_ndr.eml", MailKind.BOUNCE, "postmaster-bounce"),
        # No envelope, no Return-Path, a normal-looking From: only its wording gives it away.
        ("exchange_ndr.eml", MailKind.BOUNCE, "mta-bounce-text"),
        ("arf_report.eml", MailKind.ABUSE_REPORT, "feedback-report"),
        ("read_receipt.eml", MailKind.AUTO_REPLY, "read-receipt"),
        ("exchange_out_of_office.eml", MailKind.AUTO_REPLY, "auto-reply-subject"),
        ("abwesenheitsnotiz.eml", MailKind.AUTO_REPLY, "auto-reply-subject"),
        ("gmail_vacation.eml", MailKind.AUTO_REPLY, "auto-replied"),
        ("vacation_x_autoreply.eml", MailKind.AUTO_REPLY, "autoreply-headers"),
        ("monitoring_alert.eml", MailKind.AUTO_GENERATED, "auto-submitted"),
        ("list_post.eml", MailKind.AUTO_GENERATED, "precedence-bulk"),
    ],
)
def test_automated_mail_is_recognised_by_the_rule_that_fits(name: str, kind: MailKind, rule: str) -> None:
    result = run(load(name))
    assert result.kind is kind
    assert result.reason.startswith(f"{rule}: ")
    assert result.suppress_notifications


@pytest.mark.parametrize(
    ("name", "suppress"),
    [
        ("customer_question.eml", False),
        # A person who writes about their absence, or forwards a bounce, gets a ticket.
        ("human_out_of_office_subject.eml", False),
        ("human_forwarded_bounce.eml", False),
        # A noreply sender opens a ticket but is never answered.
        ("noreply_receipt.eml", True),
    ],
)
def test_mail_written_by_people_is_normal(name: str, suppress: bool) -> None:
    result = run(load(name), smtp("ana.kovac@kunde.example"))
    assert result.kind is MailKind.NORMAL
    assert result.suppress_notifications is suppress


def test_normal_mail_says_why() -> None:
    assert run(load("customer_question.eml")).reason == "no automated-mail signs"


# --- each rule, positive and negative ------------------------------------------------------------


def _report(report_type: str | None, part_type: str) -> ParsedMail:
    parameter = f" report-type={report_type};" if report_type else ""
    raw = (
        "From: Mail System <system@mx.kunde.example>\r\n"
        "To: support@smilepass.example\r\n"
        "Subject: Report\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report;{parameter} boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
        f"--b1\r\nContent-Type: {part_type}\r\n\r\nReporting-MTA: dns; mx.kunde.example\r\n\r\n"
        "Final-Recipient: rfc822; ana@kunde.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b1--\r\n"
    )
    return parse_mail(raw.encode())


@pytest.mark.parametrize(
    ("report_type", "part_type", "kind"),
    [
        ("delivery-status", "message/delivery-status", MailKind.BOUNCE),
        ("Delivery-Status", "message/delivery-status", MailKind.BOUNCE),
        ("feedback-report", "message/feedback-report", MailKind.ABUSE_REPORT),
        ("disposition-notification", "message/disposition-notification", MailKind.AUTO_REPLY),
        # A report whose Content-Type lost report-type is known by its machine-readable part.
        (None, "message/delivery-status", MailKind.BOUNCE),
        (None, "message/feedback-report", MailKind.ABUSE_REPORT),
    ],
)
def test_multipart_report_kinds(report_type: str | None, part_type: str, kind: MailKind) -> None:
    assert run(_report(report_type, part_type)).kind is kind


def test_a_forwarded_dsn_inside_a_persons_mail_is_not_a_bounce() -> None:
    raw = (
        "From: Jonas Weber <jonas@kundenhaus.example>\r\nTo: support@smilepass.example\r\n"
        "Subject: Fwd: this came back\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nWhy did my mail to you come back?\r\n"
        "--b1\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: MAILER-DAEMON@mx.kundenhaus.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.kundenhaus.example.\r\n"
        "--b2--\r\n--b1--\r\n"
    )
    result = run(parse_mail(raw.encode()), smtp("jonas@kundenhaus.example"))
    assert result.kind is MailKind.NORMAL
    assert not result.suppress_notifications


@pytest.mark.parametrize(
    "address", ["MAILER-DAEMON@mx.example", "mailer-daemon@googlemail.com", "Mailer_Daemon@x.example"]
)
def test_mail_from_mailer_daemon_is_a_bounce_whatever_it_says(address: str) -> None:
    result = run(mail(from_(address), subject="Hello", body="Nothing about delivery here."))
    assert result.kind is MailKind.BOUNCE
    assert result.reason.startswith("mailer-daemon: ")


@pytest.mark.parametrize(
    "address", ["daemon@tools.example", "mailer@shop.example", "mailerdaemonfan@x.example"]
)
def test_addresses_that_merely_resemble_mailer_daemon_are_not(address: str) -> None:
    assert run(mail(from_(address))).kind is MailKind.NORMAL


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Returned mail: User unknown", "See the transcript."),
        ("Notice", "Your message could not be delivered to ana@kunde.example: mailbox full."),
    ],
)
def test_postmaster_with_bounce_wording_is_a_bounce(subject: str, body: str) -> None:
    result = run(mail(from_("Postmaster@kunde.example"), subject=subject, body=body))
    assert result.kind is MailKind.BOUNCE
    assert result.reason.startswith("postmaster-bounce: ")


def test_postmaster_mail_never_opens_a_ticket_whatever_it_says() -> None:
    # SPEC §2: mail from mailer-daemon/postmaster never opens a ticket.
    result = run(
        mail(
            from_("postmaster@kunde.example"),
            subject="Your SPF record",
            body="Your SPF record lists a host that does not exist.",
        )
    )
    assert result.kind is MailKind.BOUNCE
    assert result.suppress_notifications
    assert result.reason.startswith("postmaster-bounce: ")


def test_null_sender_with_bounce_wording_is_a_bounce() -> None:
    parsed = mail(
        from_("system@mx.kunde.example"),
        subject="Delivery failure",
        body="Your message could not be delivered.",
    )
    result = run(parsed, smtp(""))
    assert result.kind is MailKind.BOUNCE
    assert result.reason.startswith("null-sender-bounce: ")


def test_return_path_null_stands_for_the_envelope_where_there_is_none() -> None:
    parsed = mail(
        "Return-Path: <>",
        from_("system@mx.kunde.example"),
        subject="Delivery failure",
        body="Your message could not be delivered.",
    )
    assert run(parsed, NO_ENVELOPE).kind is MailKind.BOUNCE
    # Without Return-Path, the same mail from an unknown envelope is a person's until proven otherwise.
    without = mail(
        from_("system@mx.kunde.example"), subject="Delivery failure", body="It could not be delivered."
    )
    assert run(without, NO_ENVELOPE).kind is MailKind.NORMAL


def test_null_sender_without_bounce_wording_is_not_a_bounce_but_is_never_answered() -> None:
    result = run(mail(subject="Calendar reminder", body="Standup at 10."), smtp(""))
    assert result.kind is MailKind.NORMAL
    assert result.suppress_notifications
    assert "null-sender: null envelope sender" in result.reason


def test_mta_wording_needs_a_bounce_subject_too() -> None:
    body = "This is the mail system at host mx.kunde.example.\n\nI'm sorry to have to inform you ..."
    assert run(mail(subject="Undelivered Mail Returned to Sender", body=body)).kind is MailKind.BOUNCE
    assert run(mail(subject="Why did this come back?", body=body)).kind is MailKind.NORMAL
    assert run(mail(subject="Re: Undelivered Mail Returned to Sender", body=body)).kind is MailKind.NORMAL
    assert run(mail(subject="Undeliverable mail?", body="My mail to you bounced.")).kind is MailKind.NORMAL


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: Auto-Replied",
        "Auto-Submitted: auto-replied; owner-email=x",
    ],
)
def test_auto_submitted_auto_replied_is_an_auto_reply(header: str) -> None:
    result = run(mail(header))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.reason.startswith("auto-replied: ")


@pytest.mark.parametrize(
    "header",
    ["X-Autoreply: yes", "X-Autorespond: Ana is away", "X-Autogenerated: Reply", "Precedence: auto_reply"],
)
def test_non_standard_auto_reply_headers(header: str) -> None:
    result = run(mail(header))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.suppress_notifications


def test_negative_auto_reply_header_values_mean_a_person() -> None:
    result = run(mail("X-Autoreply: no", "Auto-Submitted: no"))
    assert result.kind is MailKind.NORMAL
    assert not result.suppress_notifications


@pytest.mark.parametrize(
    ("subject", "header"),
    [
        ("Automatic reply: [SP-42] Card declined", "Auto-Submitted: auto-generated"),
        ("Out of Office: Card declined", "X-Auto-Response-Suppress: All"),
        ("Auto: Ana Kovac is out of the office", "Precedence: bulk"),
        ("Réponse automatique : Carte refusée", "X-MS-Exchange-Inbox-Rules-Loop: ana.kovac@kunde.example"),
        ("Respuesta automática: Tarjeta rechazada", "Return-Path: <>"),
        ("自动回复: Card declined", "Auto-Submitted: auto-generated"),
    ],
)
def test_out_of_office_subject_with_an_automated_header_is_an_auto_reply(subject: str, header: str) -> None:
    result = run(mail(header, subject=subject))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.reason.startswith("auto-reply-subject: ")


@pytest.mark.parametrize(
    "subject",
    ["Out of Office: Card declined", "Automatic reply: Card declined", "Abwesenheitsnotiz: Rechnung"],
)
def test_out_of_office_subject_alone_is_an_auto_reply(subject: str) -> None:
    # SPEC §2: an out-of-office recognised by its subject alone (issue 11)
    result = run(mail(subject=subject), smtp("ana.kovac@kunde.example"))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.reason.endswith("alone")
    assert result.suppress_notifications


@pytest.mark.parametrize(
    "subject",
    ["Out of office next week, who takes my ticket?", "Auto: Unfall gestern", "Re: Automatic reply: Card"],
)
def test_a_person_writing_about_an_absence_is_not_an_auto_reply(subject: str) -> None:
    result = run(mail(subject=subject), smtp("ana.kovac@kunde.example"))
    assert result.kind is MailKind.NORMAL
    assert not result.suppress_notifications


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-notified",
        "Auto-Submitted: auto-generated (failure)",
    ],
)
def test_auto_submitted_other_than_no_is_auto_generated(header: str) -> None:
    result = run(mail(header))
    assert result.kind is MailKind.AUTO_GENERATED
    assert result.suppress_notifications


@pytest.mark.parametrize("value", ["bulk", "list", "junk", "BULK"])
def test_precedence_bulk_list_junk_is_auto_generated(value: str) -> None:
    result = run(mail(f"Precedence: {value}"))
    assert result.kind is MailKind.AUTO_GENERATED
    assert result.reason == f"precedence-bulk: Precedence: {value.lower()}"


def test_list_id_is_auto_generated() -> None:
    result = run(mail("List-Id: Payments developers <payments-devs.lists.payments.example>"))
    assert result.kind is MailKind.AUTO_GENERATED
    assert result.reason.startswith("list-id: ")


@pytest.mark.parametrize(
    "header",
    [
        # One-to-one mail sent through CRMs carries List-Unsubscribe; it still deserves an answer.
        "List-Unsubscribe: <mailto:leave@crm.example>",
        "Feedback-ID: 123:campaign:crm.example",
        "Precedence: first-class",
        # A request not to get out-of-office replies says nothing against an acknowledgement.
        "X-Auto-Response-Suppress: OOF, DR",
        # Exchange marks mail that a server-side rule forwarded: still a person's words.
        "X-MS-Exchange-Inbox-Rules-Loop: ana.kovac@kunde.example",
    ],
)
def test_headers_that_are_no_sign_of_automated_mail(header: str) -> None:
    result = run(mail(header), smtp("ana.kovac@kunde.example"))
    assert result.kind is MailKind.NORMAL
    assert not result.suppress_notifications


@pytest.mark.parametrize("value", ["All", "AutoReply", "DR, NDR, RN, NRN, OOF, AutoReply"])
def test_a_request_for_no_auto_replies_is_honoured_without_changing_the_kind(value: str) -> None:
    result = run(mail(f"X-Auto-Response-Suppress: {value}"), smtp("ana.kovac@kunde.example"))
    assert result.kind is MailKind.NORMAL
    assert result.suppress_notifications
    assert result.reason.startswith("response-suppress: ")


# --- which rule wins -----------------------------------------------------------------------------


def test_a_dsn_is_a_bounce_though_it_also_says_auto_replied() -> None:
    # postfix_dsn.eml carries Auto-Submitted: auto-replied, like every Postfix bounce.
    result = run(load("postfix_dsn.eml"))
    assert result.kind is MailKind.BOUNCE
    assert "auto-submitted: Auto-Submitted: auto-replied" in result.reason


def test_an_abuse_report_from_the_null_sender_is_not_a_bounce() -> None:
    assert run(load("arf_report.eml"), smtp("")).kind is MailKind.ABUSE_REPORT


def test_mailer_daemon_beats_auto_replied() -> None:
    assert (
        run(mail(from_("MAILER-DAEMON@mx.example"), "Auto-Submitted: auto-replied")).kind is MailKind.BOUNCE
    )


def test_an_out_of_office_is_an_auto_reply_though_it_says_auto_generated() -> None:
    result = run(load("exchange_out_of_office.eml"))
    assert result.kind is MailKind.AUTO_REPLY
    assert "auto-submitted: Auto-Submitted: auto-generated" in result.reason


def test_an_auto_reply_through_a_list_is_an_auto_reply() -> None:
    parsed = mail("List-Id: <team.lists.kunde.example>", "Auto-Submitted: auto-replied")
    assert run(parsed).kind is MailKind.AUTO_REPLY


# --- loop signals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "envelope", "signal"),
    [
        (("Auto-Submitted: auto-generated",), smtp("alerts@kunde.example"), "auto-submitted"),
        (("Precedence: junk",), smtp("ana.kovac@kunde.example"), "precedence-bulk"),
        (("List-Id: <team.lists.kunde.example>",), smtp("ana.kovac@kunde.example"), "list-id"),
        ((), smtp(""), "null-sender"),
        (("Return-Path: <>",), NO_ENVELOPE, "null-sender"),
        ((from_("noreply@shop.example"),), smtp("noreply@shop.example"), "unnotifiable-sender"),
        ((), smtp("do-not-reply@crm.example"), "unnotifiable-sender"),
        ((from_("support@smilepass.example"),), smtp("ana.kovac@kunde.example"), "unnotifiable-sender"),
        ((from_("Support+SP-42.Q2hdk3@SmilePass.example"),), NO_ENVELOPE, "unnotifiable-sender"),
        ((), smtp("support+bounce-17.ab12cd@smilepass.example"), "unnotifiable-sender"),
        (("Return-Path: <billing@smilepass.example>",), NO_ENVELOPE, "unnotifiable-sender"),
        (("X-Auto-Response-Suppress: All",), smtp("ana.kovac@kunde.example"), "response-suppress"),
    ],
)
def test_each_loop_signal_suppresses_notifications(
    headers: tuple[str, ...], envelope: Envelope, signal: str
) -> None:
    result = run(mail(*headers), envelope)
    assert result.suppress_notifications
    assert f"{signal}: " in result.reason


@pytest.mark.parametrize(
    "envelope",
    [
        smtp("ana.kovac@kunde.example"),
        # Unknown envelope (IMAP, pipe) is not the null sender.
        NO_ENVELOPE,
        Envelope(mail_from="", rcpt_tos=(), source="pipe"),
    ],
)
def test_no_loop_signal_no_suppression(envelope: Envelope) -> None:
    result = run(mail(), envelope)
    assert result == Classification(MailKind.NORMAL, "no automated-mail signs", suppress_notifications=False)


def test_all_loop_signals_are_reported_not_just_the_one_that_decided_the_kind() -> None:
    parsed = mail(
        from_("noreply@shop.example"),
        "Auto-Submitted: auto-replied",
        "Precedence: bulk",
        "List-Id: <news.shop.example>",
    )
    result = run(parsed, smtp(""))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.reason.startswith("auto-replied: Auto-Submitted: auto-replied; ")
    for signal in ("precedence-bulk", "list-id", "null-sender", "unnotifiable-sender"):
        assert f"{signal}: " in result.reason


# --- should_notify -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "",
        "<>",
        "no-reply@shop.example",
        "noreply@shop.example",
        "NoReply@shop.example",
        "do-not-reply@shop.example",
        "donotreply@shop.example",
        "do_not_reply@shop.example",
        "noreply-dmarc-support@google.com",
        "notifications.no-reply@crm.example",
        "mailer-daemon@mx.example",
        "MAILER-DAEMON@mx.example",
        "MAILER-DAEMON",
        "postmaster@kunde.example",
        "Postmaster@kunde.example",
        "support@smilepass.example",
        "SUPPORT@smilepass.example",
        "support+SP-42.Q2hdk3@smilepass.example",
        "support+bounce-17.ab12cd@smilepass.example",
        "<billing@smilepass.example>",
    ],
)
def test_should_notify_refuses_machines_and_ourselves(address: str) -> None:
    assert not should_notify(address, ours=OURS)


@pytest.mark.parametrize(
    "address",
    [
        "ana@smilepass.example",
        "ana.kovac@kunde.example",
        "norman@kunde.example",
        "replies@kunde.example",
        "support@other.example",
    ],
)
def test_should_notify_accepts_people(address: str) -> None:
    assert should_notify(address, ours=OURS)


# --- the corpus, both ways -----------------------------------------------------------------------

# The real bounces in the corpus, judged by reading each: every one is a DSN from MAILER-DAEMON or
# Postmaster (two are delay warnings, which are delivery reports too and must not open tickets).
CORPUS_BOUNCES = (
    "mail-gem/spec/fixtures/emails/multipart_report_emails/multi_address_bounce1.eml",
    "mail-gem/spec/fixtures/emails/multipart_report_emails/multi_address_bounce2.eml",
    "mail-gem/spec/fixtures/emails/multipart_report_emails/multipart_report_multiple_status.eml",
    "mail-gem/spec/fixtures/emails/multipart_report_emails/report_422.eml",
    "mail-gem/spec/fixtures/emails/multipart_report_emails/report_530.eml",
    "mail-gem/spec/fixtures/emails/mime_emails/raw_email_with_mimepart_without_content_type.eml",
)


def _corpus_mails(corpus_dir: Path) -> list[Path]:
    paths = sorted(
        [
            *(corpus_dir / "mail-gem/spec/fixtures/emails").rglob("*.eml"),
            *(corpus_dir / "talon/tests/fixtures").rglob("*.eml"),
        ]
    )
    assert len(paths) > 100, f"corpus looks incomplete at {corpus_dir}"
    return paths


@pytest.mark.corpus
@pytest.mark.parametrize("relative", CORPUS_BOUNCES)
def test_every_real_bounce_in_the_corpus_is_a_bounce(corpus_dir: Path, relative: str) -> None:
    result = run(parse_mail((corpus_dir / relative).read_bytes()))
    assert result.kind is MailKind.BOUNCE, result.reason
    assert result.suppress_notifications


@pytest.mark.corpus
def test_no_other_corpus_mail_is_a_bounce(corpus_dir: Path) -> None:
    bounces = {corpus_dir / relative for relative in CORPUS_BOUNCES}
    others = [path for path in _corpus_mails(corpus_dir) if path not in bounces]
    wrong = {
        str(path.relative_to(corpus_dir)): result.reason
        for path in others
        if (result := run(parse_mail(path.read_bytes()))).kind in (MailKind.BOUNCE, MailKind.ABUSE_REPORT)
    }
    assert wrong == {}
    assert len(others) + len(bounces) == len(_corpus_mails(corpus_dir))


@pytest.mark.corpus
def test_corpus_replies_from_people_get_answers(corpus_dir: Path) -> None:
    replies = sorted((corpus_dir / "talon/tests/fixtures/standard_replies").glob("*.eml"))
    assert len(replies) == 12
    for path in replies:
        result = run(parse_mail(path.read_bytes()))
        assert (path.name, result.kind, result.suppress_notifications) == (path.name, MailKind.NORMAL, False)
