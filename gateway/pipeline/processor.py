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
from gateway.domain import ParsedMail
from gateway.errors import NotAMailError, TransientError
from gateway.pipeline.classify import Classification, MailKind, classify
from gateway.pipeline.happenings import Happening, TicketOpened
from gateway.pipeline.new_ticket import IntakeDefaults, plan_new_ticket, requester_of
from gateway.pipeline.parse import parse_mail
from gateway.pipeline.quotes import trim_reply
from gateway.pipeline.screenshots import ImageLimits, sort_attachments
from gateway.store import tickets as store
from gateway.store.blobs import BlobStore
from gateway.store.db import unit_of_work
from gateway.store.files import add_files
from gateway.store.inbox import ClaimedItem, InboxStore

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

    @property
    def parsed(self) -> ParsedMail:
        assert self.mail is not None, "parse stage has not run"
        return self.mail


class Notifier(Protocol):
    """Turns what happened into outbox rows, inside the mail's own transaction."""

    def plan(self, session: Session, happenings: Sequence[Happening], *, inbox_id: int) -> None: ...


@dataclass(frozen=True)
class ProcessorDeps:
    settings: Settings
    ours: GatewayAddresses
    inbox: InboxStore
    blobs: BlobStore
    intake_defaults: dict[str, IntakeDefaults] = field(default_factory=dict)  # by envelope source
    notifier: Notifier | None = None  # None: nothing is sent (the notifications issue fills this in)

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
        return ProcessResult(ctx.item.id, Outcome.BOUNCE, None, ctx.classification.reason)
    if kind is MailKind.ABUSE_REPORT:
        return ProcessResult(ctx.item.id, Outcome.ABUSE_REPORT, None, ctx.classification.reason)
    return None


def auto_reply_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """An out-of-office joins its ticket as a record, or is recorded without one; nothing changes."""
    assert ctx.classification is not None
    if ctx.classification.kind is not MailKind.AUTO_REPLY:
        return None
    mail = ctx.parsed
    ticket = store.ticket_for_message_ids(ctx.session, (*mail.references, *mail.in_reply_to))
    author = requester_of(mail, ctx.item.envelope)
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
        threaded_by="references" if ticket else "new",
    )
    where = f"on ticket {ticket.id}" if ticket else "without a ticket"
    return ProcessResult(ctx.item.id, Outcome.AUTO_REPLY, ticket.id if ticket else None, f"recorded {where}")


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
    limits = deps.settings.limits
    files = sort_attachments(
        mail.attachments,
        limits=ImageLimits(
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
            max_attachments=limits.max_attachments,
            max_attachment_bytes=limits.max_attachment_bytes,
        ),
    )
    add_files(
        ctx.session,
        deps.blobs,
        ticket_id=ticket.id,
        message_db_id=message.id,
        files=files,
        inbox_id=ctx.item.id,
    )
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


STAGES: tuple[tuple[str, Stage], ...] = (
    ("parse", parse_stage),
    ("duplicate", duplicate_stage),
    ("classify", classify_stage),
    ("auto_reply", auto_reply_stage),
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
