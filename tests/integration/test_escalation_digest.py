"""SPEC §12 by the scheduler and the planner: overdue first responses escalated once, the daily digest
once per local day, Urgent money and security to whoever is on call, and every customer message to an
Enterprise customer's account manager. Mail goes in through the processor as `serve` builds it, the
scheduler runs with a clock the test moves (no waiting), and what people receive is read from the
mail a real SMTP sink captured."""

from __future__ import annotations

import email
import email.policy
import email.utils
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.config import load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.daemon.scheduler import Scheduler
from gateway.notify.digest import queue_digest
from gateway.notify.planner import NotificationPlanner
from gateway.reply_address import reply_address
from gateway.store.db import unit_of_work
from gateway.store.models import Event, OutboxRow, Ticket
from tests.helpers import TEST_SECRET, ServeProcess, free_port, make_mail, ticketgate, write_config
from tests.integration.smtp_sink import SmtpSink
from tests.integration.test_notifications import config_with, deliver, events, outbox_rows, parse, smtp_sender

SUPPORT = "support@smilepass.example"
TRIAGE = "triage@smilepass.example"
KIM = "kim@smilepass.example"  # account manager of bigcorp.example (Enterprise), tests/helpers.py
ANA = "Ana <ana@smilepass.example>"
ON_CALL = "oncall@smilepass.example"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def runtime_for(tmp_path: Path, database_url: str, extra: str = "") -> Runtime:
    return build_runtime(load_settings(config_with(tmp_path, database_url, extra=extra)))


@pytest.fixture
def make_runtime(tmp_path: Path, database_url: str) -> Iterator[Callable[[str], Runtime]]:
    built: list[Runtime] = []

    def make(extra: str = "") -> Runtime:
        built.append(runtime_for(tmp_path, database_url, extra))
        return built[-1]

    yield make
    for runtime in built:
        runtime.close()


def scheduler(runtime: Runtime, at: datetime) -> Scheduler:
    return Scheduler(
        runtime.inbox.sessions, runtime.settings, notifier=runtime.deps.notifier, clock=lambda: at
    )


def created_at(runtime: Runtime, ticket_id: int) -> datetime:
    with unit_of_work(runtime.inbox.sessions) as session:
        return session.get_one(Ticket, ticket_id).created_at


def staff_address(ticket_id: int) -> str:
    return reply_address(SUPPORT, prefix="SP", ticket_id=ticket_id, audience="staff", secret=TEST_SECRET)


def delivered(runtime: Runtime, sink: SmtpSink, template: str) -> dict[str, list[EmailMessage]]:
    """Send what is queued through the real sink; the `template` mails each address received."""
    sender = smtp_sender(runtime, sink)
    while sender.send_due():
        pass
    message_ids = {f"<{row.message_id}>": row.to_address for row in outbox_rows(runtime, template)}
    got: dict[str, list[EmailMessage]] = {}
    for captured in sink.captured:
        mail = parse(captured.raw)
        if mail["Message-ID"] in message_ids:
            got.setdefault(captured.rcpt_tos[0], []).append(mail)
    return got


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


# --- escalation ---------------------------------------------------------------------------------


def test_an_overdue_first_response_is_escalated_once_to_triage_and_the_account_manager(
    make_runtime: Callable[[str], Runtime], sink: SmtpSink
) -> None:
    runtime = make_runtime("")
    # Enterprise and Urgent: due in 30 minutes (60, halved for Enterprise).
    overdue = deliver(
        runtime,
        make_mail("[urgent] Checkout is down", sender="Bo <bo@bigcorp.example>"),
        mail_from="bo@bigcorp.example",
    )
    # Answered in time by a public staff reply: never escalated.
    answered = deliver(runtime, make_mail("[urgent] Refund missing", sender="Eve <eve@customer.example>"))
    deliver(runtime, make_mail("x", "We are on it.\n", sender=ANA), rcpt=(staff_address(answered.ticket_id),))
    # Resolved by staff (a command only, so no public reply): not escalated either.
    resolved = deliver(runtime, make_mail("[urgent] Never mind", sender="Al <al@customer.example>"))
    deliver(runtime, make_mail("x", "#resolved\n", sender=ANA), rcpt=(staff_address(resolved.ticket_id),))
    # Low priority, Free: due in two days.
    later = deliver(runtime, make_mail("Typo on the pricing page", sender="Cy <cy@customer.example>"))

    due = created_at(runtime, overdue.ticket_id) + timedelta(minutes=30)
    assert scheduler(runtime, due - timedelta(minutes=1)).escalate_once() == []
    assert scheduler(runtime, due + timedelta(minutes=80)).escalate_once() == [overdue.ticket_id]
    # Once: a later round, and a restarted node (a new scheduler), escalate nothing more.
    assert scheduler(runtime, due + timedelta(hours=3)).escalate_once() == []
    assert Scheduler(
        runtime.inbox.sessions,
        runtime.settings,
        notifier=runtime.deps.notifier,
        clock=lambda: due + timedelta(days=3),
    ).escalate_once() == [later.ticket_id]

    got = delivered(runtime, sink, "escalation")
    # New Enterprise tickets already tell the account manager (an `escalation` at once); the overdue
    # ones are those that say so.
    overdue_mails = {to: [m for m in mails if "OVERDUE" in text_of(m)] for to, mails in got.items()}
    assert sorted(to for to, mails in overdue_mails.items() if mails) == [KIM, TRIAGE]
    [to_kim] = overdue_mails[KIM]  # the Enterprise ticket only
    body = text_of(to_kim)
    assert f"[SP-{overdue.ticket_id}] Checkout is down" == to_kim["Subject"]
    assert "it is 1 h 20 min late" in body
    assert "Priority: Urgent" in body and "Why you: you are the account manager (Enterprise customer)" in body
    assert all(len(line) <= 72 for line in body.splitlines())
    assert "1 h 20 min" in html_of(to_kim)
    triage_refs = sorted(m["Subject"] for m in overdue_mails[TRIAGE])
    assert triage_refs == sorted(
        [f"[SP-{overdue.ticket_id}] Checkout is down", f"[SP-{later.ticket_id}] Typo on the pricing page"]
    )

    escalated = events(runtime, "escalated")
    assert sorted(e.ticket_id for e in escalated) == sorted([overdue.ticket_id, later.ticket_id])
    assert all(e.actor == "ticketgate" and e.field == "first_response" for e in escalated)


def test_an_assigned_ticket_escalates_to_its_assignee(
    make_runtime: Callable[[str], Runtime], sink: SmtpSink
) -> None:
    runtime = make_runtime("")
    opened = deliver(runtime, make_mail("[high] Export broken", sender="Eve <eve@customer.example>"))
    # A command alone is internal: the customer has still had no answer.
    deliver(runtime, make_mail("x", "#assign me\n", sender=ANA), rcpt=(staff_address(opened.ticket_id),))
    due = created_at(runtime, opened.ticket_id) + timedelta(minutes=240)
    assert scheduler(runtime, due + timedelta(minutes=5)).escalate_once() == [opened.ticket_id]
    got = delivered(runtime, sink, "escalation")
    assert list(got) == ["ana@smilepass.example"]
    assert "it is 5 min late" in text_of(got["ana@smilepass.example"][0])
    assert "Why you: the ticket is assigned to you." in text_of(got["ana@smilepass.example"][0])


# --- Urgent money and security -----------------------------------------------------------------


def test_a_new_urgent_billing_or_security_ticket_tells_on_call_at_once(
    make_runtime: Callable[[str], Runtime], sink: SmtpSink
) -> None:
    runtime = make_runtime("")
    assert runtime.settings.staff.on_call is None  # so on-call falls back to triage
    billing = deliver(
        runtime, make_mail("[urgent] [billing] Charged twice", sender="Eve <eve@customer.example>")
    )
    plain = deliver(runtime, make_mail("[urgent] [bug] App crashes", sender="Eve <eve@customer.example>"))
    got = delivered(runtime, sink, "staff_new_ticket")
    # Triage is the on-call fallback: one mail for the billing ticket, marked urgent; none twice.
    assert sorted(m["Subject"] for m in got[TRIAGE]) == sorted(
        [f"[SP-{billing.ticket_id}] Charged twice", f"[SP-{plain.ticket_id}] App crashes"]
    )
    [urgent] = [m for m in got[TRIAGE] if "you are on call" in text_of(m)]
    assert urgent["Subject"] == f"[SP-{billing.ticket_id}] Charged twice"
    assert "a new Urgent Billing & Payments ticket" in text_of(urgent)


def test_on_call_gets_its_own_mail_beside_triage(tmp_path: Path, database_url: str, sink: SmtpSink) -> None:
    config = config_with(tmp_path, database_url)
    text = config.read_text(encoding="utf-8").replace(
        'triage = "triage@smilepass.example"', f'triage = "triage@smilepass.example"\non_call = "{ON_CALL}"'
    )
    config.write_text(text, encoding="utf-8")
    runtime = build_runtime(load_settings(config))
    try:
        security = deliver(
            runtime, make_mail("[urgent] [security] Leaked key", sender="Eve <eve@customer.example>")
        )
        deliver(runtime, make_mail("[high] [security] Odd login", sender="Eve <eve@customer.example>"))
        got = delivered(runtime, sink, "staff_new_ticket")
        [paged] = got[ON_CALL]
        assert paged["Subject"] == f"[SP-{security.ticket_id}] Leaked key"
        assert "URGENT, you are on call" in text_of(paged)
        assert "you are on call" in html_of(paged)
        assert len(got[TRIAGE]) == 2 and not any("on call" in text_of(m) for m in got[TRIAGE])
        # Queued with the ticket, in its transaction: the row names the mail that opened it.
        [row] = [r for r in outbox_rows(runtime, "staff_new_ticket") if r.to_address == ON_CALL]
        assert row.ticket_id == security.ticket_id and row.inbox_id is not None
    finally:
        runtime.close()


# --- account managers ------------------------------------------------------------------------------


def test_the_account_manager_hears_every_customer_message_on_enterprise_tickets(
    make_runtime: Callable[[str], Runtime], sink: SmtpSink
) -> None:
    runtime = make_runtime("")
    big = deliver(
        runtime,
        make_mail("Reports are slow", sender="Bo <bo@bigcorp.example>", message_id="<b1@bigcorp.example>"),
        mail_from="bo@bigcorp.example",
    )
    small = deliver(runtime, make_mail("Reports are slow too", sender="Pro <pro@customer.example>"))
    deliver(
        runtime,
        make_mail(
            f"Re: [SP-{big.ticket_id}] Reports are slow",
            "Now it times out entirely.\n",
            sender="Bo <bo@bigcorp.example>",
        ),
        mail_from="bo@bigcorp.example",
    )
    deliver(
        runtime,
        make_mail(
            f"Re: [SP-{small.ticket_id}] Reports are slow too",
            "Any news?\n",
            sender="Pro <pro@customer.example>",
        ),
        mail_from="pro@customer.example",
    )
    got = delivered(runtime, sink, "requester_reply")
    [to_kim] = got[KIM]
    assert to_kim["Subject"] == f"[SP-{big.ticket_id}] Reports are slow"
    assert "Now it times out entirely." in text_of(to_kim)
    assert sorted(m["Subject"] for m in got[TRIAGE]) == sorted(
        [f"[SP-{big.ticket_id}] Reports are slow", f"[SP-{small.ticket_id}] Reports are slow too"]
    )


# --- the digest -------------------------------------------------------------------------------------

DIGEST = '\n[views]\ndigest_at = "08:00"\ntimezone = "Europe/Oslo"\n'
OSLO = ZoneInfo("Europe/Oslo")


def next_local(hour: int, minute: int, after: datetime) -> datetime:
    """The next moment after `after` when Oslo clocks show hour:minute, as UTC."""
    local = after.astimezone(OSLO)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate.astimezone(ZoneInfo("UTC"))


def test_the_daily_digest_goes_to_triage_once_per_local_day(
    make_runtime: Callable[[str], Runtime], sink: SmtpSink
) -> None:
    runtime = make_runtime(DIGEST)
    urgent = deliver(runtime, make_mail("[urgent] Checkout is down", sender="Eve <eve@customer.example>"))
    deliver(runtime, make_mail("Typo on the pricing page", sender="Cy <cy@customer.example>"))
    answered = deliver(runtime, make_mail("[high] Export broken", sender="Al <al@customer.example>"))
    deliver(runtime, make_mail("x", "Fixed now.\n", sender=ANA), rcpt=(staff_address(answered.ticket_id),))
    opened = created_at(runtime, urgent.ticket_id)

    eight = next_local(8, 0, opened + timedelta(hours=2))  # the Urgent ticket is overdue by then
    assert scheduler(runtime, eight - timedelta(minutes=1)).digest_once() == []
    assert scheduler(runtime, eight + timedelta(minutes=3)).digest_once() == [TRIAGE]
    assert scheduler(runtime, eight + timedelta(hours=5)).digest_once() == []  # same day
    assert scheduler(runtime, eight + timedelta(days=1, minutes=-2)).digest_once() == []  # 07:58 next day

    [digest] = delivered(runtime, sink, "digest")[TRIAGE]
    day = eight.astimezone(OSLO).date().isoformat()
    assert digest["Subject"].startswith(f"Daily digest {day}: ")
    assert digest["Auto-Submitted"] == "auto-generated"
    text = text_of(digest)
    assert all(len(line) <= 72 for line in text.splitlines()), text
    sections = dict(_sections(text))
    ref = f"SP-{urgent.ticket_id}"
    assert sorted(_refs(sections["New since yesterday"])) == sorted(
        f"SP-{t}" for t in (urgent.ticket_id, urgent.ticket_id + 1, answered.ticket_id)
    )
    assert _refs(sections["Unassigned Urgent and High"]) == [ref, f"SP-{answered.ticket_id}"]
    assert _refs(sections["First responses overdue"]) == [ref]  # the answered High one is not
    assert f"SP-{answered.ticket_id}" not in _refs(sections["Waiting longest for us"])
    assert "Checkout is down" in html_of(digest) and "<table" in html_of(digest)

    # The next local day, a time missed while nothing ran is caught up at the next check.
    assert scheduler(runtime, eight + timedelta(days=1, hours=6)).digest_once() == [TRIAGE]
    assert len(outbox_rows(runtime, "digest")) == 2


def test_serve_sends_the_digest_at_its_first_round_once_the_time_has_passed(
    tmp_path: Path, database_url: str
) -> None:
    """The daemon as deployed: `digest_at` already passed today (00:00 UTC), so the round `serve`
    runs as it starts queues the digest, and its sender delivers it with the ticket in it."""
    port = free_port()
    config = write_config(
        tmp_path, database_url, '\n[views]\ndigest_at = "00:00"\n', listen=f"127.0.0.1:{port}"
    )
    ingested = ticketgate(
        "ingest",
        config=config,
        stdin=make_mail("[urgent] [billing] Charged twice", sender="Eve <eve@customer.example>"),
    )
    assert ingested.returncode == 0, ingested.stderr
    serve = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        deadline = time.monotonic() + 30
        digests: list[EmailMessage] = []
        while not digests:
            for path in sorted((tmp_path / "outgoing").glob("*.eml")):
                mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if str(mail["Subject"]).startswith("Daily digest "):
                    assert isinstance(mail, EmailMessage)
                    digests.append(mail)
            assert time.monotonic() < deadline, serve.output()
            time.sleep(0.2)
    finally:
        serve.stop()
    [digest] = digests
    assert email.utils.parseaddr(str(digest["To"]))[1] == TRIAGE
    assert "SP-1      Urgent" in text_of(digest)
    assert "1 new" in str(digest["Subject"])


def test_no_digest_without_digest_at(make_runtime: Callable[[str], Runtime]) -> None:
    runtime = make_runtime("")
    deliver(runtime, make_mail("[urgent] Checkout is down", sender="Eve <eve@customer.example>"))
    at = next_local(9, 0, datetime.now(ZoneInfo("UTC")))
    assert scheduler(runtime, at).digest_once() == []
    scheduler(runtime, at).run_round()
    assert outbox_rows(runtime, "digest") == []


def _sections(text: str) -> Iterator[tuple[str, list[str]]]:
    """(title, lines) per section of the digest's text part."""
    title: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("-" * 72):
            continue
        if line and line.rstrip(")").split(" (")[0] in {
            "New since yesterday",
            "Unassigned Urgent and High",
            "Waiting longest for us",
            "First responses overdue",
        }:
            if title is not None:
                yield title, lines
            title, lines = line.split(" (")[0], []
        elif title is not None:
            lines.append(line)
    if title is not None:
        yield title, lines


def _refs(lines: list[str]) -> list[str]:
    return [line.split()[0] for line in lines if line.startswith("SP-")]


# --- two nodes racing ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_schedulers_racing_on_postgresql_escalate_and_digest_once(
    tmp_path: Path, fresh_postgres: str
) -> None:
    """Two nodes' schedulers, each with its own engine, run the jobs at the same instant without the
    round's advisory lock: the `done_once` key alone lets exactly one of them queue each mail."""
    first = runtime_for(tmp_path, fresh_postgres, DIGEST)
    second = build_runtime(first.settings)
    try:
        ids = [
            deliver(
                first, make_mail(f"[urgent] Outage {n}", sender=f"u{n} <u{n}@customer.example>")
            ).ticket_id
            for n in range(5)
        ]
        at = next_local(8, 30, created_at(first, ids[-1]) + timedelta(hours=2))
        escalated: list[list[int]] = []
        digests: list[int] = []
        barrier = threading.Barrier(2)

        def node(runtime: Runtime) -> None:
            planner = runtime.deps.notifier
            assert isinstance(planner, NotificationPlanner)
            from gateway.daemon.escalation import escalate_overdue

            barrier.wait()
            with unit_of_work(runtime.inbox.sessions) as session:
                escalated.append(
                    escalate_overdue(session, runtime.settings.response_targets, planner, now=at)
                )
            barrier.wait()
            with unit_of_work(runtime.inbox.sessions) as session:
                digests.append(len(queue_digest(session, planner, now=at)))

        threads = [threading.Thread(target=node, args=(r,)) for r in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(t for found in escalated for t in found) == ids
        assert sorted(digests) == [0, 1]
        with unit_of_work(first.inbox.sessions) as session:
            rows = session.scalars(select(OutboxRow).where(OutboxRow.template == "escalation")).all()
            assert sorted(row.ticket_id for row in rows) == ids  # one to triage per ticket
            kinds = session.scalars(select(Event.ticket_id).where(Event.kind == "escalated")).all()
            assert sorted(kinds) == ids
        # And through the schedulers with their lock, later: nothing more.
        assert scheduler(second, at + timedelta(hours=1)).escalate_once() == []
        assert scheduler(first, at + timedelta(hours=1)).digest_once() == []
    finally:
        second.close()
        first.close()
