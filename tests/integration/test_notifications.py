"""Notifications end to end (SPEC §7): mail in → outbox rows in the same transaction → a real SMTP sink
(or a folder), with retries, failures, dead letters, bounces fed back in, loop protection, header
injection and template overrides."""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

import pytest
import trustme
from sqlalchemy import func, select

from gateway.addresses import GatewayAddresses
from gateway.config import NotificationSettings, RelayTarget, load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Address, Envelope
from gateway.notify.relay import DirRelay, SmtpRelay
from gateway.notify.sender import Sender
from gateway.pipeline.happenings import CommandResult, ReplyAdded, StatusChanged
from gateway.pipeline.processor import ProcessResult
from gateway.reply_address import AUDIENCE_REQUESTER, AUDIENCE_STAFF, parse_reply_detail, parse_verp_detail
from gateway.store import participants as participants_store
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from gateway.store.models import Event, Message, OutboxRow, Ticket, UndeliverableAddress, utcnow
from tests.helpers import TEST_SECRET, make_mail, ticketgate, write_config
from tests.integration.smtp_sink import Captured, SmtpSink, free_port

OURS = GatewayAddresses(["support@smilepass.example", "billing@smilepass.example"])
SUPPORT = "support@smilepass.example"


# --- fixtures and helpers ------------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def config_with(tmp_path: Path, database_url: str, *, relay: str | None = None, extra: str = "") -> Path:
    path = write_config(tmp_path, database_url, extra)
    if relay is not None:
        text = path.read_text(encoding="utf-8")
        text = text.replace(f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "{relay}"')
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    built = build_runtime(load_settings(config_with(tmp_path, database_url)))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def deliver(
    runtime: Runtime,
    raw: bytes,
    *,
    mail_from: str = "maria@customer.example",
    rcpt: tuple[str, ...] = (SUPPORT,),
    source: str = "smtp",
) -> ProcessResult:
    ids = runtime.inbox.add_many([(raw, Envelope(mail_from=mail_from, rcpt_tos=rcpt, source=source))])
    (result,) = runtime.processor("test").process_ids(ids)
    return result


def outbox_rows(runtime: Runtime, template: str | None = None) -> list[OutboxRow]:
    with unit_of_work(runtime.inbox.sessions) as session:
        query = select(OutboxRow).order_by(OutboxRow.id)
        if template is not None:
            query = query.where(OutboxRow.template == template)
        return list(session.scalars(query))


def events(runtime: Runtime, kind: str) -> list[Event]:
    with unit_of_work(runtime.inbox.sessions) as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def ticket_count(runtime: Runtime) -> int:
    with unit_of_work(runtime.inbox.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Ticket)) or 0)


def smtp_sender(
    runtime: Runtime,
    sink: SmtpSink,
    *,
    clock: Clock | None = None,
    policy_: NotificationSettings | None = None,
    **relay: object,
) -> Sender:
    return Sender(
        runtime.inbox.sessions,
        SmtpRelay(RelayTarget("smtp", host=sink.host, port=sink.port), **relay),  # type: ignore[arg-type]
        policy_ or runtime.settings.notifications,
        worker="test-sender",
        clock=clock or Clock(),
        rng=random.Random(7),
    )


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def to_addresses(msg: EmailMessage) -> list[str]:
    values = [str(v) for name in ("to", "cc", "bcc") for v in (msg.get_all(name) or [])]
    return [address for _, address in getaddresses(values)]


def detail_of(address: str) -> str:
    match = OURS.match(address)
    assert match is not None and match.detail is not None, address
    return match.detail


def sent_to(sink: SmtpSink, address: str) -> list[Captured]:
    return [mail for mail in sink.captured if mail.rcpt_tos == (address,)]


def dsn_for(original: Captured, *, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A real RFC 3464 report, as the recipient's MTA writes it for a mail we really sent."""
    failed = original.rcpt_tos[0]
    returned_headers = original.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    code = "550" if status.startswith("5") else "451"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        f"To: {original.mail_from}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <dsn.1@mx.customer.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"\r\n'
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mx.customer.example.\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {failed}\r\n"
        f"Original-Recipient: rfc822; {failed}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {code} {status} <{failed}>: Recipient address rejected\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"{returned_headers}\r\n"
        "\r\n"
        "--BOUNDARY--\r\n"
    ).encode("ascii")


# --- the whole way: pipe CLI → outbox → relay ----------------------------------------------------


def test_a_mail_piped_in_is_acknowledged_through_a_real_smtp_relay(
    tmp_path: Path, database_url: str, sink: SmtpSink
) -> None:
    config = config_with(tmp_path, database_url, relay=f"smtp://{sink.host}:{sink.port}")
    mail = make_mail(subject="Payment plan ADD button does nothing", message_id="<first.1@customer.example>")

    run = ticketgate("ingest", config=config, stdin=mail)
    assert run.returncode == 0, run.stderr

    (ack,) = sent_to(sink, "maria@customer.example")
    msg = ack.message
    assert msg["Subject"] == "[SP-1] Payment plan ADD button does nothing"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert to_addresses(msg) == ["maria@customer.example"]
    assert msg["In-Reply-To"] == "<first.1@customer.example>"
    assert "<first.1@customer.example>" in msg["References"].split()
    reply_to = msg["Reply-To"].addresses[0].addr_spec
    token = parse_reply_detail(detail_of(reply_to), prefix="SP", secret=TEST_SECRET)
    assert token is not None and (token.ticket_id, token.audience) == (1, AUDIENCE_REQUESTER)
    # The envelope sender is this mail's own VERP address, naming its outbox row.
    listed = ticketgate("outbox", "list", "--json", config=config).json()
    ack_row = next(row for row in listed if row["template"] == "ticket_created")
    assert parse_verp_detail(detail_of(ack.mail_from), secret=TEST_SECRET) == ack_row["id"]
    assert ack_row["status"] == "sent"
    assert msg["Message-ID"] == f"<{ack_row['message_id']}>"
    assert ack_row["message_id"].startswith("tg.SP-1.o")

    # Staff see every new ticket, with a staff reply address.
    (staff,) = sent_to(sink, "triage@smilepass.example")
    staff_token = parse_reply_detail(
        detail_of(staff.message["Reply-To"].addresses[0].addr_spec), prefix="SP", secret=TEST_SECRET
    )
    assert staff_token is not None and staff_token.audience == AUDIENCE_STAFF

    shown = ticketgate("tickets", "show", "SP-1", "--json", config=config).json()
    assert {(n["template"], n["to"], n["status"]) for n in shown["notifications"]} == {
        ("ticket_created", "maria@customer.example", "sent"),
        ("staff_new_ticket", "triage@smilepass.example", "sent"),
    }


def test_the_embedded_style_dir_relay_writes_one_eml_file_per_mail(tmp_path: Path) -> None:
    config = config_with(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    run = ticketgate("ingest", config=config, stdin=make_mail())
    assert run.returncode == 0, run.stderr
    files = sorted((tmp_path / "outgoing").glob("*.eml"))
    assert len(files) == 2
    mails = [parse(path.read_bytes()) for path in files]
    ack = next(m for m in mails if m["To"].addresses[0].addr_spec == "maria@customer.example")
    assert ack["Subject"] == "[SP-1] Payment plan ADD button does nothing"
    assert parse_verp_detail(detail_of(ack["Return-Path"].strip("<>")), secret=TEST_SECRET) is not None
    assert not list((tmp_path / "outgoing").glob(".tmp-*"))


def test_a_reply_to_a_notification_finds_its_ticket_by_the_outbound_message_id(runtime: Runtime) -> None:
    deliver(runtime, make_mail())
    (ack,) = outbox_rows(runtime, "ticket_created")
    with unit_of_work(runtime.inbox.sessions) as session:
        found = ticket_store.ticket_for_message_ids(session, ["unknown@x.example", ack.message_id])
        assert found is not None and found.id == ack.ticket_id


# --- retries, failures, dead letters ---------------------------------------------------------------


def test_a_451_is_retried_with_back_off_and_the_mail_is_sent_once(runtime: Runtime, sink: SmtpSink) -> None:
    deliver(runtime, make_mail())
    clock = Clock()
    sender = smtp_sender(runtime, sink, clock=clock)
    sink.answer(451, 451)

    first = sender.send_due()
    assert {r.status for r in first} == {"retry"}
    retried = outbox_rows(runtime)
    base = runtime.settings.notifications.retry_base_seconds
    for row in retried:
        assert row.status == "retry" and row.attempts == 1
        assert "451" in (row.last_error or "")
        wait = (row.next_attempt_at - clock.now).total_seconds()
        assert base * 0.5 <= wait <= base  # jittered, within the first step

    assert sender.send_due() == []  # nothing is due before its back-off ends
    clock.advance(seconds=base)
    assert {r.status for r in sender.send_due()} == {"sent"}
    assert sender.send_due() == []
    assert [row.status for row in outbox_rows(runtime)] == ["sent", "sent"]
    assert len(sent_to(sink, "maria@customer.example")) == 1
    assert sink.attempts == 4


def test_back_off_doubles_and_is_capped() -> None:
    from gateway.notify.sender import backoff

    rng = random.Random(3)
    waits = [backoff(n, base=60, cap=600, rng=rng).total_seconds() for n in range(1, 8)]
    for attempt, wait in enumerate(waits, start=1):
        step = min(60 * 2 ** (attempt - 1), 600)
        assert step * 0.5 <= wait <= step
    assert max(waits) <= 600


def test_a_550_fails_the_notification_for_good(runtime: Runtime, sink: SmtpSink) -> None:
    deliver(runtime, make_mail())
    sink.always(550)
    clock = Clock()
    sender = smtp_sender(runtime, sink, clock=clock)
    assert {r.status for r in sender.send_due()} == {"failed"}
    clock.advance(days=3)
    assert sender.send_due() == []
    rows = outbox_rows(runtime)
    assert {row.status for row in rows} == {"failed"}
    assert all("550 5.1.1" in (row.last_error or "") for row in rows)
    assert sink.captured == []


def test_a_notification_past_its_deadline_is_dead(runtime: Runtime, sink: SmtpSink) -> None:
    deliver(runtime, make_mail())
    sink.always(451)
    clock = Clock()
    sender = smtp_sender(runtime, sink, clock=clock)
    sender.send_due()
    hours = runtime.settings.notifications.deadline_hours
    clock.advance(hours=hours + 1)
    assert {r.status for r in sender.send_due()} == {"dead"}
    rows = outbox_rows(runtime)
    assert {row.status for row in rows} == {"dead"}
    assert all("past its deadline" in (row.last_error or "") for row in rows)
    clock.advance(days=30)
    assert sender.send_due() == []


def test_a_notification_is_tried_until_its_deadline_not_for_a_count_of_tries(
    runtime: Runtime, sink: SmtpSink
) -> None:
    """SPEC §15: time decides when a notification is dead. Before, ten tries (about three hours of
    back-off) killed it; now a relay that answers 451 for 40 hours still gets it tried every hour
    at most, and the 48th hour kills it."""
    deliver(runtime, make_mail(sender="x@customer.example"))
    sink.always(451)
    clock = Clock()
    sender = smtp_sender(runtime, sink, clock=clock)
    queued_at = clock.now
    statuses: list[str] = []
    while clock.now < queued_at + timedelta(hours=40):
        statuses += [r.status for r in sender.send_due()]
        for row in outbox_rows(runtime):
            assert row.status == "retry"
            assert (row.next_attempt_at - clock.now) <= timedelta(hours=1)  # back-off capped at an hour
        clock.advance(hours=1)
    assert set(statuses) == {"retry"} and len(statuses) > 2 * 20  # both rows, tried past the old ten
    clock.now = queued_at + timedelta(hours=runtime.settings.notifications.deadline_hours, minutes=1)
    assert [r.status for r in sender.send_due()] == ["dead", "dead"]
    assert all("past its deadline" in (row.last_error or "") for row in outbox_rows(runtime))


def _sender_to(runtime: Runtime, port: int, clock: Clock) -> Sender:
    """A sender relaying to 127.0.0.1:`port` (down until a sink listens there)."""
    return Sender(
        runtime.inbox.sessions,
        SmtpRelay(RelayTarget("smtp", host="127.0.0.1", port=port), timeout=5),
        runtime.settings.notifications,
        worker="test",
        clock=clock,
    )


def test_a_relay_that_is_down_is_logged_once_not_once_per_mail(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(3):
        deliver(runtime, make_mail(sender=f"c{n}@customer.example", subject=f"Problem {n}"))
    port = free_port()  # nothing listens here yet
    clock = Clock()
    sender = _sender_to(runtime, port, clock)
    caplog.set_level(logging.INFO, logger="gateway.notify.sender")
    for _ in range(4):
        results = sender.send_due()
        assert len(results) == 1 and results[0].outage  # the round stops at the first refusal
        clock.advance(hours=1)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "held up" in errors[0].getMessage()

    with SmtpSink(port=port) as sink:
        clock.advance(hours=1)
        sender.send_due()
    assert len(sink.captured) == 6
    assert sum("flowing again" in r.getMessage() for r in caplog.records) == 1
    assert {row.status for row in outbox_rows(runtime)} == {"sent"}


def test_notifications_left_untried_by_an_outage_are_due_again_at_once_and_not_charged(
    runtime: Runtime,
) -> None:
    """The sender claims several rows per transaction; when the relay fails on the first, the
    rest go back untried rather than wait out their claim."""
    for n in range(3):
        deliver(runtime, make_mail(sender=f"c{n}@customer.example", subject=f"Problem {n}"))
    port = free_port()  # nothing listens here yet
    clock = Clock()
    sender = _sender_to(runtime, port, clock)
    [tried] = sender.send_due()
    assert tried.outage
    rows = outbox_rows(runtime)
    assert len(rows) == 6  # an acknowledgement and a note to staff per mail
    assert sorted(row.attempts for row in rows) == [0, 0, 0, 0, 0, 1]
    assert all(row.claimed_by is None for row in rows)

    with SmtpSink(port=port) as sink:
        results = sender.send_due()  # the same instant: only the tried one waits for its back-off
    assert len(results) == 5 and {r.status for r in results} == {"sent"}
    assert tried.outbox_id not in {r.outbox_id for r in results}
    assert len(sink.captured) == 5


def test_starttls_and_login_are_used_with_a_relay_that_offers_them(runtime: Runtime) -> None:
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    deliver(runtime, make_mail())
    with SmtpSink(starttls=server, login=("ticketgate", "s3cret")) as sink:
        sender = smtp_sender(runtime, sink, user="ticketgate", password="s3cret", tls_context=client)
        assert {r.status for r in sender.send_due()} == {"sent"}
    assert len(sink.captured) == 2
    assert all(mail.tls and mail.authenticated for mail in sink.captured)


def test_a_password_is_never_sent_to_a_relay_without_starttls(runtime: Runtime, sink: SmtpSink) -> None:
    deliver(runtime, make_mail())
    sender = smtp_sender(runtime, sink, user="ticketgate", password="s3cret")
    results = sender.send_due()
    assert results[0].status == "retry" and "STARTTLS" in results[0].detail
    assert sink.captured == []


def test_smtps_is_tls_from_the_first_byte(runtime: Runtime) -> None:
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    deliver(runtime, make_mail())
    with SmtpSink(implicit_tls=server) as sink:
        sender = Sender(
            runtime.inbox.sessions,
            SmtpRelay(RelayTarget("smtps", host=sink.host, port=sink.port), tls_context=client),
            runtime.settings.notifications,
            worker="test",
        )
        assert {r.status for r in sender.send_due()} == {"sent"}
    assert len(sink.captured) == 2 and all(mail.tls for mail in sink.captured)


def test_two_senders_side_by_side_send_every_notification_once(runtime: Runtime, sink: SmtpSink) -> None:
    for n in range(8):
        deliver(runtime, make_mail(sender=f"c{n}@customer.example", subject=f"Problem {n}"))
    senders = [smtp_sender(runtime, sink) for _ in range(2)]
    threads = [threading.Thread(target=s.send_due) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [mail.message["Message-ID"] for mail in sink.captured]
    assert len(ids) == 16 and len(set(ids)) == 16
    assert {row.status for row in outbox_rows(runtime)} == {"sent"}


# --- bounces ------------------------------------------------------------------------------------


def test_a_real_bounce_marks_the_notification_and_the_address_and_opens_no_ticket(
    runtime: Runtime, sink: SmtpSink
) -> None:
    deliver(runtime, make_mail())
    smtp_sender(runtime, sink).send_due()
    (ack,) = sent_to(sink, "maria@customer.example")

    result = deliver(runtime, dsn_for(ack), mail_from="", rcpt=(ack.mail_from,))
    assert result.outcome == "bounce"

    (row,) = outbox_rows(runtime, "ticket_created")
    assert row.status == "bounced" and "5.1.1" in (row.last_error or "")
    with unit_of_work(runtime.inbox.sessions) as session:
        marked = session.get(UndeliverableAddress, "maria@customer.example")
        assert marked is not None and "5.1.1" in marked.reason
        ticket = session.get_one(Ticket, 1)
        assert ticket.status == "Open"
    (event,) = events(runtime, "bounce")
    assert event.ticket_id == 1 and "maria@customer.example" in (event.new or "")
    assert ticket_count(runtime) == 1

    # No more mail to the address ... (a status change would tell the requester)
    planner = runtime.deps.notifier
    assert planner is not None
    with unit_of_work(runtime.inbox.sessions) as session:
        planner.plan(session, [StatusChanged(1, "Open", "Resolved", "ana@smilepass.example")], inbox_id=1)
    assert outbox_rows(runtime, "status_changed") == []
    assert any("undeliverable" in (e.new or "") for e in events(runtime, "notification_skipped"))

    # ... until it writes again.
    deliver(runtime, make_mail(subject="Another thing"))
    assert len(outbox_rows(runtime, "ticket_created")) == 2
    with unit_of_work(runtime.inbox.sessions) as session:
        assert session.get(UndeliverableAddress, "maria@customer.example") is None


def test_a_delay_notice_is_shown_to_staff_but_marks_nothing(runtime: Runtime, sink: SmtpSink) -> None:
    deliver(runtime, make_mail())
    smtp_sender(runtime, sink).send_due()
    (ack,) = sent_to(sink, "maria@customer.example")
    deliver(runtime, dsn_for(ack, status="4.4.1", action="delayed"), mail_from="", rcpt=(ack.mail_from,))
    (row,) = outbox_rows(runtime, "ticket_created")
    assert row.status == "sent"
    with unit_of_work(runtime.inbox.sessions) as session:
        assert session.get(UndeliverableAddress, "maria@customer.example") is None
    assert len(events(runtime, "bounce_delayed")) == 1


def test_a_bounce_with_a_forged_verp_token_marks_nothing(runtime: Runtime, sink: SmtpSink) -> None:
    deliver(runtime, make_mail())
    smtp_sender(runtime, sink).send_due()
    (ack,) = sent_to(sink, "maria@customer.example")
    local, _, domain = ack.mail_from.partition("@")
    forged = f"{local[:-3]}aaa@{domain}"
    forged_mail = Captured(forged, ack.rcpt_tos, ack.raw, False, False)
    result = deliver(runtime, dsn_for(forged_mail), mail_from="", rcpt=(forged,))
    assert result.outcome == "bounce"
    assert outbox_rows(runtime, "ticket_created")[0].status == "sent"
    assert events(runtime, "bounce") == []
    assert ticket_count(runtime) == 1


# --- loop protection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "headers", "mail_from"),
    [
        (
            "Monitor <alerts@customer.example>",
            {"Auto-Submitted": "auto-generated"},
            "alerts@customer.example",
        ),
        ("News <news@customer.example>", {"Precedence": "bulk"}, "news@customer.example"),
        ("News <news@customer.example>", {"Precedence": "junk"}, "news@customer.example"),
        ("List <list@customer.example>", {"Precedence": "list"}, "list@customer.example"),
        (
            "List <list@customer.example>",
            {"List-Id": "<users.lists.customer.example>"},
            "list@customer.example",
        ),
        ("Someone <someone@customer.example>", {}, ""),  # the null sender
        ("MAILER-DAEMON@customer.example", {}, "MAILER-DAEMON@customer.example"),
        ("postmaster@customer.example", {}, "postmaster@customer.example"),
        ("Shop <noreply@customer.example>", {}, "noreply@customer.example"),
        ("Shop <no-reply@customer.example>", {}, "bounces@customer.example"),
        ("Ourselves <support@smilepass.example>", {}, "support@smilepass.example"),
        ("Ourselves <billing+x@smilepass.example>", {}, "bounces@customer.example"),
    ],
)
def test_no_acknowledgement_goes_to_a_mail_that_could_start_a_loop(
    runtime: Runtime, sender: str, headers: dict[str, str], mail_from: str
) -> None:
    deliver(runtime, make_mail(sender=sender, headers=headers, subject="Loop?"), mail_from=mail_from)
    assert outbox_rows(runtime, "ticket_created") == []
    # Whatever the sender, nothing is ever queued to one of our own or a machine address.
    assert all(OURS.match(row.to_address) is None for row in outbox_rows(runtime))


def test_a_normal_mail_is_acknowledged(runtime: Runtime) -> None:
    deliver(runtime, make_mail())
    assert [row.to_address for row in outbox_rows(runtime, "ticket_created")] == ["maria@customer.example"]


def test_the_sixth_acknowledgement_in_an_hour_is_not_sent(runtime: Runtime) -> None:
    for n in range(7):
        result = deliver(runtime, make_mail(subject=f"Problem number {n}"))
        assert result.outcome == "ticket"
    acks = outbox_rows(runtime, "ticket_created")
    assert [row.ticket_id for row in acks] == [1, 2, 3, 4, 5]
    assert len(outbox_rows(runtime, "staff_new_ticket")) == 7  # staff still see every ticket
    skipped = events(runtime, "notification_skipped")
    assert [e.ticket_id for e in skipped] == [6, 7]
    assert "limit 5" in (skipped[0].new or "")


# --- header injection through the whole pipeline ----------------------------------------------


def test_ticket_text_cannot_inject_a_header_or_a_recipient(runtime: Runtime, sink: SmtpSink) -> None:
    raw = (
        "From: =?utf-8?q?Mallory=0D=0ABcc=3A_victim=40evil=2Eexample?= <mallory@customer.example>\r\n"
        "To: support@smilepass.example\r\n"
        "Subject: =?utf-8?q?Help=0D=0ABcc=3A_victim2=40evil=2Eexample?=\r\n"
        "Message-ID: <inject.1@customer.example>\r\n"
        "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
        "\r\n"
        "I clicked Pay and nothing happens.\r\n"
    ).encode("ascii")
    assert deliver(runtime, raw, mail_from="mallory@customer.example").outcome == "ticket"
    smtp_sender(runtime, sink).send_due()
    (ack,) = sent_to(sink, "mallory@customer.example")
    assert ack.rcpt_tos == ("mallory@customer.example",)
    msg = ack.message
    assert msg["Bcc"] is None and msg["Cc"] is None
    assert to_addresses(msg) == ["mallory@customer.example"]
    assert "victim" not in " ".join(r for mail in sink.captured for r in mail.rcpt_tos)
    assert "\n" not in msg["Subject"]
    headers_block = ack.raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc:") for line in headers_block.split(b"\r\n"))


# --- templates: overrides and errors ----------------------------------------------------------------


def test_a_template_override_folder_is_used(tmp_path: Path) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "ticket_created.txt.j2").write_text("{{ marker }}\nHi from our own template: {{ ref }}\n")
    config = config_with(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        extra=f'\n[notifications]\ntemplates_dir = "{overrides}"\n',
    )
    assert ticketgate("ingest", config=config, stdin=make_mail()).returncode == 0
    mails = [parse(p.read_bytes()) for p in (tmp_path / "outgoing").glob("*.eml")]
    ack = next(m for m in mails if to_addresses(m) == ["maria@customer.example"])
    text = ack.get_body(("plain",))
    assert text is not None and "Hi from our own template: SP-1" in text.get_content()


def test_an_undefined_variable_fails_the_notification_not_the_ticket_and_retry_renders_again(
    tmp_path: Path,
) -> None:
    overrides = tmp_path / "templates"
    overrides.mkdir()
    broken = overrides / "ticket_created.txt.j2"
    broken.write_text("{{ marker }}\nDear {{ customer_nickname }}\n")
    config = config_with(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        extra=f'\n[notifications]\ntemplates_dir = "{overrides}"\n',
    )
    run = ticketgate("ingest", config=config, stdin=make_mail())
    assert run.returncode == 0 and "ticket SP-1" in run.stderr
    listed = ticketgate("outbox", "list", "--json", "--status", "failed", config=config).json()
    (failed,) = listed
    assert failed["template"] == "ticket_created" and "customer_nickname" in failed["last_error"]
    assert len(list((tmp_path / "outgoing").glob("*.eml"))) == 1  # staff were still told

    broken.write_text("{{ marker }}\nDear {{ requester_name }}\n")
    retry = ticketgate("outbox", "retry", str(failed["id"]), config=config)
    assert retry.returncode == 0, retry.stderr
    assert f"outbox {failed['id']}: sent" in retry.stdout
    assert len(list((tmp_path / "outgoing").glob("*.eml"))) == 2


def test_outbox_list_and_retry_on_the_command_line(tmp_path: Path) -> None:
    config = config_with(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", relay="smtp://127.0.0.1:9")
    assert ticketgate("ingest", config=config, stdin=make_mail()).returncode == 0
    text = ticketgate("outbox", "list", config=config).stdout
    assert "ticket_created" in text and "retry" in text
    bad = ticketgate("outbox", "list", "--status", "nonsense", config=config)
    assert bad.returncode == 64
    assert ticketgate("outbox", "retry", "999", config=config).returncode == 1


# --- the other events, from happenings the threading stages record --------------------------------


def add_reply(runtime: Runtime, *, ticket_id: int, author: Address, role: str, text: str) -> int:
    with unit_of_work(runtime.inbox.sessions) as session:
        inbox_id = runtime.inbox.add_many([(make_mail(), Envelope("", (), "pipe"))])[0]
        message = ticket_store.add_message(
            session,
            ticket_id=ticket_id,
            inbox_id=inbox_id,
            message_id=f"reply.{inbox_id}@x.example",
            kind="mail",
            author_address=author.address,
            author_name=author.name,
            role=role,
            visibility="public",
            subject="Re: x",
            text=text,
            threaded_by="reply-address",
        )
        return message.id


def plan(runtime: Runtime, *happenings: object) -> None:
    planner = runtime.deps.notifier
    assert planner is not None
    with unit_of_work(runtime.inbox.sessions) as session:
        planner.plan(session, happenings, inbox_id=1)  # type: ignore[arg-type]


def test_a_public_staff_reply_goes_to_the_requester_and_cc_and_says_resolved_once(runtime: Runtime) -> None:
    deliver(runtime, make_mail())
    # Boss is copied on the ticket (SPEC §13: a participant) and wrote on it; someone who only wrote
    # on it (threaded by a Message-ID they were forwarded) is not copied on the answers.
    boss = Address("boss@customer.example", "Boss")
    with unit_of_work(runtime.inbox.sessions) as session:
        participants_store.add_participants(session, 1, [boss], added_by="maria@customer.example")
    add_reply(runtime, ticket_id=1, author=boss, role="cc", text="+1")
    add_reply(runtime, ticket_id=1, author=Address("eve@evil.example"), role="cc", text="me too")
    ana = Address("ana@smilepass.example", "Ana")
    reply = add_reply(runtime, ticket_id=1, author=ana, role="staff", text="Fixed it for you.")
    plan(
        runtime,
        StatusChanged(1, "Open", "Resolved", ana.address),
        ReplyAdded(1, reply, ana, "staff", "public", notify=True),
    )
    rows = outbox_rows(runtime, "staff_reply")
    assert sorted(row.to_address for row in rows) == ["boss@customer.example", "maria@customer.example"]
    assert [str(parse(row.raw)["To"]) for row in rows] == ["Maria Lopez <maria@customer.example>"] * 2
    assert [parse(row.raw)["Cc"] for row in rows] == ["Boss <boss@customer.example>"] * 2
    body = parse(rows[0].raw).get_body(("plain",))
    assert body is not None and "Fixed it for you." in body.get_content()
    assert outbox_rows(runtime, "status_changed") == []  # the staff reply said it
    assert "now Resolved" in body.get_content()
    # Threaded under the staff mail and the ticket's first mail.
    with unit_of_work(runtime.inbox.sessions) as session:
        staff_message = session.get_one(Message, reply)
        first = ticket_store.load_ticket(session, 1).messages[0]  # type: ignore[union-attr]
    msg = parse(rows[0].raw)
    assert msg["In-Reply-To"] == f"<{staff_message.message_id}>"
    assert f"<{first.message_id}>" in msg["References"].split()


def test_an_internal_note_tells_the_requester_nothing(runtime: Runtime) -> None:
    deliver(runtime, make_mail())
    ana = Address("ana@smilepass.example", "Ana")
    note = add_reply(runtime, ticket_id=1, author=ana, role="staff", text="internal")
    plan(runtime, ReplyAdded(1, note, ana, "staff", "internal", notify=True))
    assert outbox_rows(runtime, "staff_reply") == []


def test_a_requester_reply_goes_to_the_staff_list_and_a_resolution_to_the_requester(runtime: Runtime) -> None:
    deliver(runtime, make_mail())
    maria = Address("maria@customer.example", "Maria")
    reply = add_reply(runtime, ticket_id=1, author=maria, role="requester", text="Still broken")
    plan(runtime, ReplyAdded(1, reply, maria, "requester", "public", notify=True))
    (row,) = outbox_rows(runtime, "requester_reply")
    assert row.to_address == "triage@smilepass.example"
    plan(runtime, StatusChanged(1, "In Progress", "Closed", "ticketgate"))
    (closed,) = outbox_rows(runtime, "status_changed")
    assert closed.to_address == "maria@customer.example"
    plan(runtime, StatusChanged(1, "Open", "In Progress", "ana@smilepass.example"))
    assert len(outbox_rows(runtime, "status_changed")) == 1  # only Resolved and Closed are told


def test_a_command_receipt_goes_to_the_staff_sender_with_a_staff_reply_address(runtime: Runtime) -> None:
    deliver(runtime, make_mail())
    ana = Address("ana@smilepass.example", "Ana")
    plan(runtime, CommandResult(1, ana, ("#priority high",), (("#frobnicate", "unknown command"),)))
    (row,) = outbox_rows(runtime, "command_result")
    msg = parse(row.raw)
    assert to_addresses(msg) == ["ana@smilepass.example"]
    token = parse_reply_detail(
        detail_of(msg["Reply-To"].addresses[0].addr_spec), prefix="SP", secret=TEST_SECRET
    )
    assert token is not None and token.audience == AUDIENCE_STAFF
    body = msg.get_body(("plain",))
    assert body is not None and "#frobnicate: unknown command" in body.get_content()


def test_enterprise_and_security_tickets_escalate(tmp_path: Path) -> None:
    config = config_with(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", extra="")
    config.write_text(
        config.read_text().replace(
            'triage = "triage@smilepass.example"',
            'triage = "triage@smilepass.example"\nsecurity_contact = "security@smilepass.example"',
        )
    )
    built = build_runtime(load_settings(config))
    try:
        deliver(built, make_mail(sender="Boss <boss@bigcorp.example>", subject="Export is slow"))
        deliver(built, make_mail(subject="[security] I can see other accounts"))
        rows = outbox_rows(built, "escalation")
        assert [(row.ticket_id, row.to_address) for row in rows] == [
            (1, "kim@smilepass.example"),
            (2, "security@smilepass.example"),
        ]
        assert "Enterprise" in str(rows[0].context["reason"])
        assert rows[1].context["reason"] == "Security category"
    finally:
        built.close()


def test_a_dir_relay_that_cannot_write_is_an_outage(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    settings = load_settings(config_with(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}"))
    built = build_runtime(settings)
    try:
        deliver(built, make_mail())
        sender = Sender(built.inbox.sessions, DirRelay(blocker / "out"), settings.notifications, worker="t")
        (result,) = sender.send_due()
        assert result.status == "retry" and result.outage
    finally:
        built.close()


# --- inside the daemon ----------------------------------------------------------------------------


def test_serve_runs_the_sender_next_to_intake(tmp_path: Path, sink: SmtpSink) -> None:
    import smtplib
    import time

    from tests.integration.test_serve import Daemon

    port = free_port()
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", listen=f"127.0.0.1:{port}")
    config.write_text(
        config.read_text().replace(
            f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"'
        )
    )
    daemon = Daemon(["--config", str(config)], tmp_path, port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("maria@customer.example", [SUPPORT], make_mail())
        deadline = time.monotonic() + 20
        while len(sink.captured) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert daemon.stop() == 0, daemon.output()
    assert sorted(r for mail in sink.captured for r in mail.rcpt_tos) == [
        "maria@customer.example",
        "triage@smilepass.example",
    ]
    assert "outbox sender delivering through smtp://" in daemon.output()
