"""Turns happenings into outbox rows, inside the mail's own transaction (the `Notifier` of the
processor). Who is told what (SPEC §7) and every reason not to send — loop signals, our own and
machine addresses, the per-sender acknowledgement limit, addresses that bounced for good — are
decided here and nowhere else.

Each row is rendered as it is queued, so it is self-contained. A template that fails to render
(missing, broken, an undefined variable) never costs the mail its ticket: the row is kept as
`failed` with the error, and `ticketgate outbox retry` renders it again once the template is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses, should_notify
from gateway.config import Settings
from gateway.domain import (
    REPLY_MARKER,
    Address,
    BounceReceived,
    CommandResult,
    EventKind,
    Happening,
    ReplyAdded,
    Role,
    Status,
    StatusChanged,
    TicketOpened,
    Tier,
    Visibility,
)
from gateway.notify.hints import what_helps
from gateway.notify.message import (
    AUTO_GENERATED,
    AUTO_REPLIED,
    Headers,
    UnsafeAddress,
    build_message,
    new_message_id,
    safe_address,
    subject_for,
    thread_root_id,
)
from gateway.notify.render import Renderer, RenderError
from gateway.present import ticket_ref
from gateway.reply_address import (
    AUDIENCE_REQUESTER,
    AUDIENCE_STAFF,
    parse_verp_detail,
    reply_address,
    verp_address,
)
from gateway.store import outbox
from gateway.store import tickets as ticket_store
from gateway.store.models import Message, OutboxRow, Ticket, utcnow

log = logging.getLogger(__name__)

# Templates sent in direct answer to a mail (RFC 3834 "auto-replied"); the rest are "auto-generated".
_ANSWERS = frozenset({"ticket_created", "command_result"})
_TOLD_STATUSES = frozenset({Status.RESOLVED.value, Status.CLOSED.value})
SECURITY_CATEGORY = "security"
# A bounce that names only its failed recipient is matched to the latest notification sent to that
# address within this many days: MTAs give up on a mail after 4 to 7 days and then bounce it.
RECIPIENT_MATCH_DAYS = 14
# A returned message carries one Message-ID; a wrapped one or quoted text a few more.
_MESSAGE_IDS_TRIED = 10


class NotificationPlanner:
    """Implements `gateway.pipeline.processor.Notifier`."""

    def __init__(
        self,
        settings: Settings,
        renderer: Renderer,
        *,
        ours: GatewayAddresses | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.renderer = renderer
        self.ours = ours or GatewayAddresses(settings.gateway.addresses)
        self.clock = clock
        self.prefix = settings.gateway.ticket_prefix
        self.secret = settings.gateway.secret
        self.sender = settings.outbound.sender
        self.base_address = _base_address(settings, self.ours)
        self.domain = self.base_address.rpartition("@")[2]

    # --- the Notifier protocol -----------------------------------------------------------------

    def plan(self, session: Session, happenings: Sequence[Happening], *, inbox_id: int | None) -> None:
        # inbox_id is None when no mail caused the happenings (the scheduler's auto-close).
        # A staff reply and a status change from the same mail reach the requester as one mail.
        told_status = {h.ticket_id: h.new for h in happenings if isinstance(h, StatusChanged)}
        replied_to_requester: set[int] = set()
        # Status changes last, whatever order the stages recorded them in, so the check holds.
        ordered = sorted(happenings, key=lambda h: isinstance(h, StatusChanged))
        for happening in ordered:
            if isinstance(happening, TicketOpened):
                self._ticket_opened(session, happening, inbox_id)
            elif isinstance(happening, ReplyAdded):
                if self._reply_added(session, happening, inbox_id, told_status.get(happening.ticket_id)):
                    replied_to_requester.add(happening.ticket_id)
            elif isinstance(happening, StatusChanged):
                if happening.ticket_id not in replied_to_requester:
                    self._status_changed(session, happening, inbox_id)
            elif isinstance(happening, CommandResult):
                self._command_result(session, happening, inbox_id)
            elif isinstance(happening, BounceReceived):
                self._bounce(session, happening)

    # --- one method per happening ----------------------------------------------------------------

    def _ticket_opened(self, session: Session, happening: TicketOpened, inbox_id: int | None) -> None:
        ticket = session.get_one(Ticket, happening.ticket_id)
        outbox.clear_undeliverable(session, happening.requester.address)
        ack_note = happening.not_acknowledged_because or "the mail was automated or a loop risk"
        if happening.acknowledge:
            ack_note = self._acknowledge(session, ticket, happening, inbox_id)
        text = happening.text
        self._queue_all(
            session,
            ticket,
            "staff_new_ticket",
            self._staff_list(),
            AUDIENCE_STAFF,
            inbox_id=inbox_id,
            trigger=happening.message_db_id,
            extra={
                "tags": list(happening.tags),
                "text": text,
                "acknowledged": ack_note == "",
                "ack_note": ack_note,
            },
        )
        for address, reason in self._escalations(ticket):
            self._queue(
                session,
                ticket,
                "escalation",
                Address(address),
                AUDIENCE_STAFF,
                inbox_id=inbox_id,
                trigger=happening.message_db_id,
                extra={"reason": reason, "text": text},
            )

    def _acknowledge(
        self, session: Session, ticket: Ticket, happening: TicketOpened, inbox_id: int | None
    ) -> str:
        """Queue `ticket_created`; "" when queued, else why not (for staff)."""
        requester = happening.requester
        limit = self.settings.outbound.ack_limit_per_hour
        since = self.clock() - timedelta(hours=1)
        sent = outbox.acks_since(session, requester.address, template="ticket_created", since=since)
        if sent >= limit:
            why = f"{requester.address} already had {sent} acknowledgements this hour (limit {limit})"
            self._skipped(session, ticket.id, "ticket_created", why, inbox_id)
            return why
        hints = what_helps(happening.text, has_screenshot=happening.has_screenshot)
        queued = self._queue(
            session,
            ticket,
            "ticket_created",
            requester,
            AUDIENCE_REQUESTER,
            inbox_id=inbox_id,
            trigger=happening.message_db_id,
            extra={
                "helps": list(hints.helps),
                "device": hints.device,
                "has_screenshot": hints.has_screenshot,
            },
        )
        return "" if queued else f"{requester.address} is not notified"

    def _reply_added(
        self, session: Session, happening: ReplyAdded, inbox_id: int | None, new_status: str | None
    ) -> bool:
        """Queue what a reply causes; True when the requester was sent the staff reply."""
        ticket = session.get_one(Ticket, happening.ticket_id)
        outbox.clear_undeliverable(session, happening.author.address)
        message = session.get(Message, happening.message_db_id)
        text = message.text if message is not None else ""
        author = happening.author.address.lower()
        if happening.role == Role.STAFF:
            if happening.visibility != Visibility.PUBLIC or not happening.notify:
                return False
            recipients = [
                person for person in self._requester_side(session, ticket) if person.address.lower() != author
            ]
            extra = {
                "text": text,
                "author_name": happening.author.name,
                "new_status": new_status if new_status in _TOLD_STATUSES else None,
            }
            queued = self._queue_all(
                session, ticket, "staff_reply", recipients, AUDIENCE_REQUESTER, inbox_id=inbox_id,
                trigger=happening.message_db_id, extra=extra,
            )  # fmt: skip
            return queued > 0
        if happening.visibility != Visibility.PUBLIC:
            return False
        staff = [Address(ticket.assignee)] if ticket.assignee else self._staff_list()
        self._queue_all(
            session,
            ticket,
            "requester_reply",
            [person for person in staff if person.address.lower() != author],
            AUDIENCE_STAFF,
            inbox_id=inbox_id,
            trigger=happening.message_db_id,
            extra={
                "text": text,
                "author_name": happening.author.name,
                "author_address": happening.author.address,
            },
        )
        return False

    def _status_changed(self, session: Session, happening: StatusChanged, inbox_id: int | None) -> None:
        if happening.new not in _TOLD_STATUSES or happening.old == happening.new:
            return
        ticket = session.get_one(Ticket, happening.ticket_id)
        self._queue(
            session,
            ticket,
            "status_changed",
            Address(ticket.requester_address, ticket.requester_name),
            AUDIENCE_REQUESTER,
            inbox_id=inbox_id,
            trigger=None,
            extra={"old": happening.old, "new": happening.new},
        )

    def _command_result(self, session: Session, happening: CommandResult, inbox_id: int | None) -> None:
        ticket = session.get_one(Ticket, happening.ticket_id)
        self._queue(
            session,
            ticket,
            "command_result",
            happening.staff,
            AUDIENCE_STAFF,
            inbox_id=inbox_id,
            trigger=None,
            extra={
                "applied": list(happening.applied),
                "refused": [{"line": line, "reason": reason} for line, reason in happening.refused],
            },
        )

    def _bounce(self, session: Session, happening: BounceReceived) -> None:
        """Mark the notification bounced and, on a permanent failure, its address undeliverable.

        Which notification: the one its VERP address names (the token makes a forged bounce unable
        to mark mail, so a bounce to a VERP address with a bad token marks nothing); for a bounce
        sent to a plain address of ours, the one whose Message-ID the returned message carries (only
        its recipients and we know it); failing that, the latest one sent to each failed recipient
        within `RECIPIENT_MATCH_DAYS`, which anyone could claim, but which only stops mail to that
        address until it writes to us again, and which staff see on the ticket.
        """
        matches = self._bounced_notifications(session, happening)
        if not matches:
            log.info("inbox %d: bounce names none of our notifications", happening.inbox_id)
            return
        words = (
            " ".join(part for part in (happening.status, happening.diagnostic) if part) or "no reason given"
        )
        for row, matched_by in matches:
            self._mark_bounced(session, row, happening, words, matched_by)

    def _bounced_notifications(
        self, session: Session, happening: BounceReceived
    ) -> list[tuple[OutboxRow, str]]:
        """(outbox row, how it was matched) for each notification the bounce is about."""
        detail = happening.verp_detail or ""
        if detail.lower().startswith("bounce-"):
            outbox_id = parse_verp_detail(detail, secret=self.secret)
            row = outbox.get(session, outbox_id) if outbox_id is not None else None
            return [(row, "")] if row is not None else []
        for message_id in happening.message_ids[:_MESSAGE_IDS_TRIED]:
            row = outbox.by_message_id(session, message_id)
            if row is not None:
                return [(row, "its Message-ID")]
        since = self.clock() - timedelta(days=RECIPIENT_MATCH_DAYS)
        found: dict[int, tuple[OutboxRow, str]] = {}
        for address in happening.recipients:
            row = outbox.latest_sent_to(session, address, since=since)
            if row is not None:
                found.setdefault(row.id, (row, "its failed recipient"))
        return list(found.values())

    def _mark_bounced(
        self, session: Session, row: OutboxRow, happening: BounceReceived, words: str, matched_by: str
    ) -> None:
        if happening.permanent:
            row.status = outbox.BOUNCED
            row.last_error = f"bounced: {words}"
            outbox.mark_undeliverable(
                session, row.to_address, reason=f"bounced: {words}", inbox_id=happening.inbox_id
            )
        else:
            row.last_error = f"delivery delayed: {words}"
        how = f" (matched by {matched_by})" if matched_by else ""
        log.info(
            "inbox %d: bounce for outbox %d to %s%s: %s",
            happening.inbox_id, row.id, row.to_address, how, words,
        )  # fmt: skip
        if row.ticket_id is not None:
            kind = EventKind.BOUNCE if happening.permanent else EventKind.BOUNCE_DELAYED
            ticket_store.add_event(
                session,
                ticket_id=row.ticket_id,
                kind=kind,
                field="notification",
                old=row.template,
                new=f"{row.to_address}: {words}{how}"[:1000],
                actor="ticketgate",
                inbox_id=happening.inbox_id,
            )

    # --- queueing ----------------------------------------------------------------------------------

    def _queue_all(
        self,
        session: Session,
        ticket: Ticket,
        template: str,
        recipients: Sequence[Address],
        audience: str,
        *,
        inbox_id: int | None,
        trigger: int | None,
        extra: dict[str, Any],
    ) -> int:
        seen: set[str] = set()
        queued = 0
        for person in recipients:
            if person.address.lower() in seen:
                continue
            seen.add(person.address.lower())
            if self._queue(
                session, ticket, template, person, audience, inbox_id=inbox_id, trigger=trigger, extra=extra
            ):
                queued += 1
        return queued

    def _queue(
        self,
        session: Session,
        ticket: Ticket,
        template: str,
        to: Address,
        audience: str,
        *,
        inbox_id: int | None,
        trigger: int | None,
        extra: dict[str, Any],
    ) -> OutboxRow | None:
        """One outbox row, rendered; None when the recipient must not be mailed (and why is recorded)."""
        if not should_notify(to.address, ours=self.ours):
            log.info("inbox %s: no %s to %s (never notified)", inbox_id, template, to.address)
            return None
        try:
            address = safe_address(to.address)
        except UnsafeAddress as exc:
            self._skipped(session, ticket.id, template, str(exc), inbox_id)
            return None
        bounced = outbox.undeliverable_reason(session, address)
        if bounced is not None:
            self._skipped(session, ticket.id, template, f"{address} is undeliverable ({bounced})", inbox_id)
            return None

        now = self.clock()
        ref = ticket_ref(self.prefix, ticket.id)
        context = {**self._ticket_context(ticket), **extra}
        row = outbox.add(
            session,
            ticket_id=ticket.id,
            template=template,
            to_address=address,
            deadline=now + timedelta(hours=self.settings.notifications.deadline_hours),
            inbox_id=inbox_id,
            context=context,
        )
        first, latest = _thread_ids(outbox.thread_message_ids(session, ticket.id), trigger)
        root = thread_root_id(ref=ref, domain=self.domain)
        row.message_id = new_message_id(ref=ref, outbox_id=row.id, domain=self.domain)
        row.envelope_from = verp_address(self.base_address, outbox_id=row.id, secret=self.secret)
        row.subject = subject_for(ref, ticket.title)
        # What the message needs besides the template context, kept so a failed render can be redone.
        row.context = {
            **context,
            "_mail": {
                "to_name": to.name,
                "reply_to": reply_address(
                    self.base_address,
                    prefix=self.prefix,
                    ticket_id=ticket.id,
                    audience=audience,
                    secret=self.secret,
                ),
                "in_reply_to": latest or first or root,
                "references": [mid for mid in (first, root, latest) if mid],
                "auto_submitted": AUTO_REPLIED if template in _ANSWERS else AUTO_GENERATED,
            },
        }
        self.render_row(row)
        return row

    def render_row(self, row: OutboxRow) -> bool:
        """(Re)build `row.raw` from its context; on a template error the row is failed with it."""
        context = {key: value for key, value in row.context.items() if key != "_mail"}
        mail = row.context["_mail"]
        headers = Headers(
            sender=self.sender,
            to=Address(row.to_address, mail["to_name"]),
            reply_to=mail["reply_to"],
            subject=row.subject,
            message_id=row.message_id,
            in_reply_to=mail["in_reply_to"],
            references=mail["references"],
            auto_submitted=mail["auto_submitted"],
        )
        try:
            row.raw = build_message(headers, self.renderer.render(row.template, context))
        except RenderError as exc:
            log.error("outbox %d: %s", row.id, exc)
            row.raw = b""
            row.status = outbox.FAILED
            row.last_error = str(exc)
            return False
        return True

    # --- who ----------------------------------------------------------------------------------------

    def _staff_list(self) -> list[Address]:
        staff = self.settings.staff
        if staff.triage:
            return [Address(staff.triage)]
        return [Address(address) for address in staff.addresses]

    def _requester_side(self, session: Session, ticket: Ticket) -> list[Address]:
        """The requester and everyone copied on the conversation (never staff)."""
        people = [Address(ticket.requester_address, ticket.requester_name)]
        for message in outbox.ticket_messages(session, ticket.id):
            if (
                message.role == Role.CC
                and message.kind == "mail"
                and not self.settings.is_staff(message.author_address)
            ):
                people.append(Address(message.author_address, message.author_name))
        return people

    def _escalations(self, ticket: Ticket) -> list[tuple[str, str]]:
        found: dict[str, str] = {}
        if ticket.tier == Tier.ENTERPRISE.value:
            customer = self.settings.customers.lookup(ticket.requester_address)
            if customer is not None and customer.account_manager:
                name = f" {customer.name}" if customer.name else ""
                found[customer.account_manager.lower()] = f"Enterprise customer{name}"
        contact = self.settings.staff.security_contact
        if contact and ticket.category.casefold() == SECURITY_CATEGORY:
            reason = "Security category"
            key = contact.lower()
            found[key] = f"{found[key]}; {reason}" if key in found else reason
        return list(found.items())

    def _ticket_context(self, ticket: Ticket) -> dict[str, Any]:
        return {
            "marker": REPLY_MARKER,
            "desk": self.sender.name or "Support",
            "ref": ticket_ref(self.prefix, ticket.id),
            "title": ticket.title,
            "status": ticket.status,
            "priority": ticket.priority,
            "category": ticket.category,
            "tier": ticket.tier,
            "requester_name": ticket.requester_name,
            "requester_address": ticket.requester_address,
        }

    def _skipped(
        self, session: Session, ticket_id: int, template: str, why: str, inbox_id: int | None
    ) -> None:
        log.info("inbox %s: no %s: %s", inbox_id, template, why)
        ticket_store.add_event(
            session,
            ticket_id=ticket_id,
            kind=EventKind.NOTIFICATION_SKIPPED,
            field="notification",
            new=f"{template}: {why}"[:1000],
            actor="ticketgate",
            inbox_id=inbox_id,
        )


def _thread_ids(
    messages: Sequence[tuple[int, str | None]], trigger: int | None
) -> tuple[str | None, str | None]:
    """The Message-IDs of the ticket's first mail and of the mail that caused this notification."""
    first = next((message_id for _, message_id in messages if message_id), None)
    latest = next((message_id for row_id, message_id in messages if row_id == trigger and message_id), None)
    return first, latest


def _base_address(settings: Settings, ours: GatewayAddresses) -> str:
    """Where replies and bounces come back to: the From address when it is ours, else our first
    real address (a `support@*` trial address has no domain to give)."""
    sender = settings.outbound.sender.address
    if ours.is_ours(sender):
        return sender
    for address in settings.gateway.addresses:
        if not address.endswith("@*"):
            return address
    return sender
