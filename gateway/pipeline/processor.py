"""Turns claimed inbox items into tickets: the stage table, and the one exception boundary.

Every stage runs inside one transaction per mail, together with marking the inbox row done, so a
mail ends as exactly one outcome or, on any failure, as nothing at all (and is retried or
quarantined). A transient fault puts the row back with a delay; anything else quarantines it
with the traceback for `ticketgate quarantine retry`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.domain import Address, ParsedMail, Priority, Status
from gateway.errors import NotAMailError, TransientError
from gateway.pipeline.bounce import read_bounce
from gateway.pipeline.classify import Classification, MailKind, classify
from gateway.pipeline.happenings import (
    BounceReceived,
    CommandResult,
    Happening,
    ReplyAdded,
    StatusChanged,
    TicketOpened,
)
from gateway.pipeline.new_ticket import IntakeDefaults, plan_new_ticket, requester_of
from gateway.pipeline.parse import parse_mail
from gateway.pipeline.quotes import trim_reply
from gateway.pipeline.reply import KIND_REFUSED, KIND_UNAUTHENTICATED, TicketState, plan_reply
from gateway.pipeline.screenshots import ImageLimits, SortedAttachments, sort_attachments
from gateway.pipeline.staff_auth import NOT_STAFF, DnsFunc, StaffAuth, authenticate_staff
from gateway.pipeline.thread import ThreadMatch, TicketRef, find_thread, reply_token_of
from gateway.store import tickets as store
from gateway.store.blobs import BlobStore
from gateway.store.db import unit_of_work
from gateway.store.files import add_files
from gateway.store.inbox import ClaimedItem, InboxStore
from gateway.store.models import Ticket, utcnow

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    TICKET = "ticket"
    REPLY = "reply"
    DUPLICATE = "duplicate"
    BOUNCE = "bounce"
    ABUSE_REPORT = "abuse_report"
    AUTO_REPLY = "auto_reply"
    QUARANTINE = "quarantine"
    RETRY = "retry"


@dataclass(frozen=True)
class ProcessResult:
    """What became of one inbox item; `detail` is for people (CLI output, logs)."""

    inbox_id: int
    outcome: Outcome
    ticket_id: int | None = None
    detail: str = ""


@dataclass
class MailContext:
    """What the stages learn about one mail as it travels; filled in stage by stage."""

    item: ClaimedItem
    session: Session
    mail: ParsedMail | None = None
    dedup_key: str = ""
    classification: Classification | None = None
    notes: list[str] = field(default_factory=list)
    happenings: list[Happening] = field(default_factory=list)
    sender: Address | None = None  # From (or the envelope sender), set by the thread stage
    thread: ThreadMatch | None = None
    staff: StaffAuth = NOT_STAFF

    @property
    def parsed(self) -> ParsedMail:
        assert self.mail is not None, "parse stage has not run"
        return self.mail


class Notifier(Protocol):
    """Turns what happened into outbox rows, inside the mail's own transaction."""

    # inbox_id is None when no mail caused the happenings (the scheduler's auto-close).
    def plan(self, session: Session, happenings: Sequence[Happening], *, inbox_id: int | None) -> None: ...


@dataclass(frozen=True)
class ProcessorDeps:
    settings: Settings
    ours: GatewayAddresses
    inbox: InboxStore
    blobs: BlobStore
    intake_defaults: dict[str, IntakeDefaults] = field(default_factory=dict)  # by envelope source
    notifier: Notifier | None = None  # None: nothing is sent (the notifications issue fills this in)
    dkim_dns: DnsFunc | None = None  # TXT lookups for DKIM; None: dkimpy's resolver (tests inject one)

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.inbox.sessions


Stage = Callable[[MailContext, ProcessorDeps], ProcessResult | None]


# --- the stages, in order ---------------------------------------------------------------------


def parse_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    ctx.mail = parse_mail(ctx.item.raw)
    ctx.dedup_key = store.dedup_key(ctx.mail.message_id, ctx.mail.content_hash)
    return None


def duplicate_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """The same mail again (SMTP and IMAP, or redelivered after a crash) gives the first result."""
    mail = ctx.parsed
    seen = store.find_seen(ctx.session, ctx.dedup_key)
    if seen is not None:
        return ProcessResult(
            ctx.item.id, Outcome.DUPLICATE, seen.ticket_id, f"duplicate of inbox {seen.inbox_id}"
        )
    if mail.message_id:
        reused = store.message_id_reused(ctx.session, mail.message_id, mail.content_hash)
        if reused is not None:
            ctx.notes.append(
                f"Message-ID <{mail.message_id}> also used by a different mail (inbox {reused.inbox_id})"
            )
    return None


def classify_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Bounces and abuse reports never open a ticket; they are recorded and stop here."""
    ctx.classification = classify(ctx.parsed, ctx.item.envelope, ours=deps.ours)
    kind = ctx.classification.kind
    if kind is MailKind.BOUNCE:
        # The notifier matches it to the notification that bounced (VERP) and tells staff;
        # a bounce never opens a ticket or changes a status.
        report = read_bounce(ctx.parsed, ctx.item.envelope, ours=deps.ours)
        ctx.happenings.append(
            BounceReceived(
                inbox_id=ctx.item.id,
                verp_detail=report.verp_detail,
                recipients=report.recipients,
                permanent=report.permanent,
                status=report.status,
                diagnostic=report.diagnostic,
            )
        )
        return ProcessResult(ctx.item.id, Outcome.BOUNCE, None, ctx.classification.reason)
    if kind is MailKind.ABUSE_REPORT:
        return ProcessResult(ctx.item.id, Outcome.ABUSE_REPORT, None, ctx.classification.reason)
    return None


class _StoreLookup:
    """The store as threading sees it (gateway.pipeline.thread.ThreadLookup)."""

    def __init__(self, session: Session, ours: GatewayAddresses) -> None:
        self._session = session
        self._ours = ours

    def ticket(self, ticket_id: int) -> TicketRef | None:
        ticket = self._session.get(Ticket, ticket_id)
        return TicketRef(ticket.id, Status(ticket.status)) if ticket is not None else None

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        ticket = store.ticket_for_any_message_ids(self._session, message_ids)
        return TicketRef(ticket.id, Status(ticket.status)) if ticket is not None else None

    def is_participant(self, ticket_id: int, address: str) -> bool:
        if self._ours.is_ours(address):
            return False
        return address.strip().lower() in store.ticket_participants(self._session, ticket_id)


def thread_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Which ticket the mail joins (SPEC §4), and whether its sender is authenticated staff (§5)."""
    assert ctx.classification is not None
    mail = ctx.parsed
    gateway = deps.settings.gateway
    ctx.sender = requester_of(mail, ctx.item.envelope)
    token = reply_token_of(
        mail, ctx.item.envelope, ours=deps.ours, prefix=gateway.ticket_prefix, secret=gateway.secret
    )
    if ctx.classification.kind is not MailKind.AUTO_REPLY:  # an out-of-office never acts for staff
        ctx.staff = authenticate_staff(
            mail,
            ctx.item.raw,
            sender=ctx.sender.address,
            staff=deps.settings.staff,
            token_audience=token.audience if token is not None else None,
            dnsfunc=deps.dkim_dns,
        )
    ctx.thread = find_thread(
        mail,
        token=token,
        sender=ctx.sender.address,
        sender_is_staff=ctx.staff.is_staff,
        lookup=_StoreLookup(ctx.session, deps.ours),
        ticket_prefix=gateway.ticket_prefix,
        vocabulary=deps.settings.tickets.vocabulary,
    )
    return None


def auto_reply_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """An out-of-office joins its ticket as a record, or is recorded without one; nothing changes."""
    assert ctx.classification is not None
    if ctx.classification.kind is not MailKind.AUTO_REPLY:
        return None
    mail = ctx.parsed
    assert ctx.thread is not None and ctx.sender is not None
    # It joins the ticket it answers even when that one is Closed: it changes nothing there.
    answered = ctx.thread.answered
    ticket = ctx.session.get(Ticket, answered) if answered is not None else None
    threaded_by = ctx.thread.threaded_by if ctx.thread.ticket_id is not None else ctx.thread.link_by
    author = ctx.sender
    store.add_message(
        ctx.session,
        ticket_id=ticket.id if ticket else None,
        inbox_id=ctx.item.id,
        message_id=mail.message_id,
        kind="auto_reply",
        author_address=author.address,
        author_name=author.name,
        role="requester" if ticket and _same(author.address, ticket.requester_address) else "cc",
        visibility="internal",
        subject=mail.subject,
        text=trim_reply(mail.text, html=mail.html).text,
        threaded_by=threaded_by.value if ticket and threaded_by else "new",
    )
    where = f"on ticket {ticket.id}" if ticket else "without a ticket"
    return ProcessResult(ctx.item.id, Outcome.AUTO_REPLY, ticket.id if ticket else None, f"recorded {where}")


def reply_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """A mail that threaded onto a ticket joins its conversation; its commands and the lifecycle apply."""
    if ctx.thread is None or ctx.thread.ticket_id is None:
        return None
    assert ctx.sender is not None and ctx.classification is not None
    mail = ctx.parsed
    settings = deps.settings
    # Locked (PostgreSQL) and read afresh: two replies to one ticket at once must not lose a change.
    ticket = ctx.session.get_one(Ticket, ctx.thread.ticket_id, with_for_update=True, populate_existing=True)
    before = TicketState(
        id=ticket.id,
        status=Status(ticket.status),
        priority=Priority(ticket.priority),
        category=ticket.category,
        assignee=ticket.assignee,
        requester=ticket.requester_address,
    )
    plan = plan_reply(
        before,
        sender=ctx.sender.address,
        staff=ctx.staff,
        new_text=trim_reply(mail.text, html=mail.html).text,
        vocabulary=settings.tickets.vocabulary,
        categories=settings.tickets.categories,
        staff_addresses=settings.staff.addresses,
        staff_reply_status=settings.tickets.staff_reply_status,
    )
    after = plan.final
    store.update_ticket(
        ticket,
        status=after.status,
        priority=after.priority,
        category=after.category,
        assignee=after.assignee,
        now=utcnow(),
    )
    message = store.add_message(
        ctx.session,
        ticket_id=ticket.id,
        inbox_id=ctx.item.id,
        message_id=mail.message_id,
        kind="mail",
        author_address=ctx.sender.address,
        author_name=ctx.sender.name,
        role=plan.role,
        visibility=plan.visibility,
        subject=mail.subject,
        text=plan.text,
        threaded_by=ctx.thread.threaded_by.value,
    )
    actor = ctx.sender.address

    def event(kind: str, field: str | None = None, old: str | None = None, new: str | None = None) -> None:
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind=kind,
            field=field,
            old=old,
            new=new,
            actor=actor,
            inbox_id=ctx.item.id,
        )

    if ctx.staff.staff_address and not ctx.staff.is_staff:
        event(KIND_UNAUTHENTICATED, new=ctx.staff.reason)
    for change in plan.changes:
        event(change.kind, change.field, change.old, change.new)
    for refusal in plan.refused:
        event(KIND_REFUSED, refusal.field, None, f"{refusal.line} — {refusal.reason}")
    for note in ctx.notes:
        store.add_event(
            ctx.session, ticket_id=ticket.id, kind="message_id_collision", new=note, actor="ticketgate"
        )
    _store_files(ctx, deps, ticket_id=ticket.id, message_db_id=message.id)

    ctx.happenings.append(
        ReplyAdded(
            ticket_id=ticket.id,
            message_db_id=message.id,
            author=ctx.sender,
            role=plan.role,
            visibility=plan.visibility,
            notify=not ctx.classification.suppress_notifications,
        )
    )
    for change in plan.status_changes:
        ctx.happenings.append(StatusChanged(ticket.id, change.old or "", change.new or "", actor))
    if plan.receipt:
        ctx.happenings.append(
            CommandResult(
                ticket_id=ticket.id,
                staff=ctx.sender,
                applied=plan.applied,
                refused=tuple((r.line, r.reason) for r in plan.refused),
            )
        )
    detail = f"{plan.role} reply on ticket {ticket.id} ({ctx.thread.threaded_by.value})"
    return ProcessResult(ctx.item.id, Outcome.REPLY, ticket.id, detail)


def _store_files(
    ctx: MailContext, deps: ProcessorDeps, *, ticket_id: int, message_db_id: int
) -> SortedAttachments:
    limits = deps.settings.limits
    files = sort_attachments(
        ctx.parsed.attachments,
        limits=ImageLimits(
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
            max_attachments=limits.max_attachments,
            max_attachment_bytes=limits.max_attachment_bytes,
        ),
        known_logo_hashes=store.repeated_small_images(
            ctx.session, (ctx.sender or requester_of(ctx.parsed, ctx.item.envelope)).address
        ),
    )
    add_files(
        ctx.session,
        deps.blobs,
        ticket_id=ticket_id,
        message_db_id=message_db_id,
        files=files,
        inbox_id=ctx.item.id,
    )
    return files


def open_ticket_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Everything else opens a ticket (automated mail too, it just gets no acknowledgement)."""
    mail = ctx.parsed
    defaults = deps.intake_defaults.get(ctx.item.envelope.source, IntakeDefaults())
    plan = plan_new_ticket(mail, ctx.item.envelope, settings=deps.settings, ours=deps.ours, defaults=defaults)
    ticket = store.create_ticket(
        ctx.session,
        title=plan.title,
        description=plan.description,
        priority=plan.priority,
        category=plan.category,
        tier=plan.tier,
        requester_address=plan.requester.address,
        requester_name=plan.requester.name,
        created_at=ctx.item.received_at,
    )
    message = store.add_message(
        ctx.session,
        ticket_id=ticket.id,
        inbox_id=ctx.item.id,
        message_id=mail.message_id,
        kind="mail",
        author_address=plan.requester.address,
        author_name=plan.requester.name,
        role="requester",
        visibility="public",
        subject=mail.subject,
        text=plan.text,
        threaded_by="new",
    )
    actor = plan.requester.address
    store.add_event(
        ctx.session,
        ticket_id=ticket.id,
        kind="created",
        field="status",
        new=ticket.status,
        actor=actor,
        inbox_id=ctx.item.id,
    )
    _link_follow_up(ctx, deps, ticket, actor=actor)
    for tag in plan.tags:
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind="tag",
            field="tag",
            new=tag,
            actor=actor,
            inbox_id=ctx.item.id,
        )
    for note in ctx.notes:
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind="message_id_collision",
            new=note,
            actor="ticketgate",
            inbox_id=ctx.item.id,
        )
    files = _store_files(ctx, deps, ticket_id=ticket.id, message_db_id=message.id)
    assert ctx.classification is not None
    ctx.happenings.append(
        TicketOpened(
            ticket_id=ticket.id,
            message_db_id=message.id,
            requester=plan.requester,
            acknowledge=not ctx.classification.suppress_notifications,
            tags=plan.tags,
            has_screenshot=bool(files.screenshots),
            text=plan.text,
        )
    )
    return ProcessResult(ctx.item.id, Outcome.TICKET, ticket.id, f"new ticket {ticket.id}")


def _link_follow_up(ctx: MailContext, deps: ProcessorDeps, ticket: Ticket, *, actor: str) -> None:
    """A reply to a Closed ticket is its follow-up; a stranger's reference only a possible one (SPEC §4)."""
    match = ctx.thread
    if match is None:
        return
    prefix = deps.settings.gateway.ticket_prefix
    links = (
        ("follow_up_of", match.follow_up_of),
        ("possible_follow_up_of", match.possible_follow_up_of),
    )
    for kind, linked in links:
        if linked is None:
            continue
        setattr(ticket, f"{kind}_id", linked)
        how = match.link_by.value if match.link_by is not None else "new"
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind=kind,
            field="link",
            new=f"{prefix}-{linked} ({how})",
            actor=actor,
            inbox_id=ctx.item.id,
        )


STAGES: tuple[tuple[str, Stage], ...] = (
    ("parse", parse_stage),
    ("duplicate", duplicate_stage),
    ("classify", classify_stage),
    ("thread", thread_stage),
    ("auto_reply", auto_reply_stage),
    ("reply", reply_stage),
    ("open_ticket", open_ticket_stage),
)


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


# --- the processor ----------------------------------------------------------------------------


class Processor:
    """Claims inbox items and runs the stages; the only place processing errors are caught."""

    def __init__(self, deps: ProcessorDeps, *, worker: str) -> None:
        self.deps = deps
        self.worker = worker
        self._outage_logged = False

    def process_ids(self, ids: Sequence[int]) -> list[ProcessResult]:
        """Process exactly these items (pipe intake); items another worker holds are left to it."""
        return [self.process_one(item) for item in self.deps.inbox.claim(self.worker, ids=ids)]

    def process_available(self, limit: int = 16) -> list[ProcessResult]:
        """Claim and process up to `limit` due items; an empty list means the queue is idle."""
        try:
            items = self.deps.inbox.claim(self.worker, limit=limit)
        except TransientError as exc:
            self._log_outage(exc)
            return []
        return [self.process_one(item) for item in items]

    def run(self, stop: threading.Event, wake: threading.Event, idle_poll: float = 1.0) -> None:
        """The daemon's processing loop: drain the queue, then wait to be woken (or poll)."""
        while not stop.is_set():
            if self.process_available():
                continue
            wake.wait(idle_poll)
            wake.clear()

    def process_one(self, item: ClaimedItem) -> ProcessResult:
        try:
            with unit_of_work(self.deps.sessions) as session:
                result = self._run_stages(MailContext(item=item, session=session))
        except TransientError as exc:
            return self._transient(item, exc)
        except OSError as exc:  # the blob store's disk: full or unwritable is worth another try
            return self._transient(item, TransientError(f"storage: {exc}"))
        except NotAMailError as exc:
            return self._quarantine(item, f"not a mail: {exc}", None)
        except Exception as exc:  # the one boundary: nothing accepted is ever dropped
            return self._quarantine(item, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if self._outage_logged:
            log.info("database reachable again")
            self._outage_logged = False
        log.info("inbox %d: %s (%s)", item.id, result.outcome, result.detail)
        return result

    def _run_stages(self, ctx: MailContext) -> ProcessResult:
        for _name, stage in STAGES:
            result = stage(ctx, self.deps)
            if result is None:
                continue
            mail = ctx.parsed
            if result.outcome is not Outcome.DUPLICATE:
                store.record_seen(
                    ctx.session,
                    key=ctx.dedup_key,
                    message_id=mail.message_id,
                    content_hash=mail.content_hash,
                    inbox_id=ctx.item.id,
                    outcome=result.outcome.value,
                    ticket_id=result.ticket_id,
                )
            if self.deps.notifier is not None and ctx.happenings:
                self.deps.notifier.plan(ctx.session, ctx.happenings, inbox_id=ctx.item.id)
            store.mark_inbox_done(
                ctx.session,
                inbox_id=ctx.item.id,
                outcome=result.outcome.value,
                ticket_id=result.ticket_id,
                message_id=mail.message_id,
                note="; ".join([result.detail, *ctx.notes]) or None,
            )
            return result
        raise AssertionError("the last stage always decides")

    def _transient(self, item: ClaimedItem, exc: TransientError) -> ProcessResult:
        processing = self.deps.settings.processing
        if item.attempts >= processing.max_attempts:
            return self._quarantine(item, f"gave up after {item.attempts} attempts: {exc}", None)
        delay = _backoff(item.attempts, processing.retry_base_seconds)
        self._log_outage(exc)
        # If even this fails, the lease runs out and the item is claimed again: nothing is lost.
        with contextlib.suppress(TransientError):
            self.deps.inbox.retry_later(item.id, delay=delay, error=str(exc))
        return ProcessResult(item.id, Outcome.RETRY, None, f"{exc}; retry in {delay.total_seconds():.0f}s")

    def _quarantine(self, item: ClaimedItem, reason: str, detail: str | None) -> ProcessResult:
        log.warning("inbox %d quarantined: %s", item.id, reason)
        try:
            self.deps.inbox.quarantine(item.id, reason=reason, detail=detail)
        except TransientError as exc:
            self._log_outage(exc)
            return ProcessResult(item.id, Outcome.RETRY, None, f"could not quarantine: {exc}")
        return ProcessResult(item.id, Outcome.QUARANTINE, None, reason)

    def _log_outage(self, exc: Exception) -> None:
        if not self._outage_logged:
            log.error("database unavailable, will retry: %s", exc)
            self._outage_logged = True


def _backoff(attempts: int, base_seconds: float) -> timedelta:
    """Capped exponential back-off with jitter, so a recovering database is not stampeded."""
    seconds = min(base_seconds * (2 ** max(attempts - 1, 0)), 3600.0)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))
