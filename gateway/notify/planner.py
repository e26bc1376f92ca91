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
    BILLING,
    OPEN_STATUSES,
    REPLY_MARKER,
    SECURITY,
    Address,
    BounceReceived,
    CommandResult,
    EventKind,
    Happening,
    Priority,
    QueueRequested,
    ReplyAdded,
    ResponseOverdue,
    Role,
    Status,
    StatusChanged,
    TicketOpened,
    TicketsRequested,
    Tier,
    Visibility,
)
from gateway.notify.hints import what_helps
from gateway.notify.message import (
    AUTO_GENERATED,
    AUTO_REPLIED,
    FilePart,
    Headers,
    UnsafeAddress,
    build_message,
    new_message_id,
    safe_address,
    subject_for,
    thread_root_id,
)
from gateway.notify.render import Renderer, RenderError
from gateway.notify.spans import span_text
from gateway.notify.staff_files import staff_files
from gateway.notify.views import MY_TICKETS_SHOWN, my_tickets_rows, queue_rows
from gateway.present import ticket_ref
from gateway.reply_address import (
    AUDIENCE_REQUESTER,
    AUDIENCE_STAFF,
    parse_verp_detail,
    reply_address,
    verp_address,
)
from gateway.store import my_tickets as my_tickets_store
from gateway.store import outbox, staff_queries
from gateway.store import tickets as ticket_store
from gateway.store.blobs import BlobStore
from gateway.store.models import Message, OutboxRow, Ticket, utcnow

log = logging.getLogger(__name__)

# Templates sent in direct answer to a mail (RFC 3834 "auto-replied"); the rest are "auto-generated".
_ANSWERS = frozenset({"ticket_created", "command_result"})
_TOLD_STATUSES = frozenset({Status.RESOLVED.value, Status.CLOSED.value})
SECURITY_CATEGORY = SECURITY.casefold()
# A new Urgent ticket in these categories also goes to `staff.on_call` at once (SPEC §12).
ON_CALL_CATEGORIES = frozenset({BILLING.casefold(), SECURITY_CATEGORY})
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
        blobs: BlobStore | None = None,
    ) -> None:
        self.settings = settings
        self.renderer = renderer
        # Where screenshots are: staff mail shows them (SPEC §12); without it, it only names none.
        self.blobs = blobs
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
            elif isinstance(happening, TicketsRequested):
                self._my_tickets(session, happening, inbox_id)
            elif isinstance(happening, QueueRequested):
                self._queue_requested(session, happening, inbox_id)
            elif isinstance(happening, ResponseOverdue):
                self._response_overdue(session, happening)

    # --- one method per happening ----------------------------------------------------------------

    def _ticket_opened(self, session: Session, happening: TicketOpened, inbox_id: int | None) -> None:
        ticket = session.get_one(Ticket, happening.ticket_id)
        outbox.clear_undeliverable(session, happening.requester.address)
        ack_note = happening.not_acknowledged_because or "the mail was automated or a loop risk"
        if happening.acknowledge:
            ack_note = self._acknowledge(session, ticket, happening, inbox_id)
        text = happening.text
        extra = {
            "tags": list(happening.tags),
            "text": text,
            "acknowledged": ack_note == "",
            "ack_note": ack_note,
        }
        on_call = self._on_call(ticket)
        called = {person.address.lower() for person in on_call}
        self._queue_all(
            session,
            ticket,
            "staff_new_ticket",
            [person for person in self.staff_list() if person.address.lower() not in called],
            AUDIENCE_STAFF,
            inbox_id=inbox_id,
            trigger=happening.message_db_id,
            extra=extra,
        )
        # The same mail, marked urgent, to whoever is on call (who may also be triage).
        self._queue_all(
            session, ticket, "staff_new_ticket", on_call, AUDIENCE_STAFF, inbox_id=inbox_id,
            trigger=happening.message_db_id, extra={**extra, "on_call": True},
        )  # fmt: skip
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
        staff = self._handlers(ticket)
        manager = self._account_manager(ticket)
        if manager is not None:  # SPEC §12: every customer message on an Enterprise ticket
            staff.append(Address(manager[0]))
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

    def _response_overdue(self, session: Session, happening: ResponseOverdue) -> None:
        """An `escalation` to the assignee (else triage) and an Enterprise customer's account manager:
        the first response is overdue. The scheduler records that it was sent (once per ticket)."""
        ticket = session.get_one(Ticket, happening.ticket_id)
        overdue = {
            "overdue_by": span_text(happening.overdue_by),
            "due_at": happening.due_at.strftime("%Y-%m-%d %H:%M UTC"),
            "text": ticket.description,
        }
        staff = self._handlers(ticket)
        why = "the ticket is assigned to you" if ticket.assignee else "the ticket is unassigned (triage)"
        seen = {person.address.lower() for person in staff}
        for person in staff:
            self._queue(
                session, ticket, "escalation", person, AUDIENCE_STAFF, inbox_id=None, trigger=None,
                extra={**overdue, "reason": why},
            )  # fmt: skip
        manager = self._account_manager(ticket)
        if manager is not None and manager[0].lower() not in seen:
            self._queue(
                session, ticket, "escalation", Address(manager[0]), AUDIENCE_STAFF, inbox_id=None,
                trigger=None, extra={**overdue, "reason": f"you are the account manager ({manager[1]})"},
            )  # fmt: skip

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
                **self._staff_queue(session, happening.staff.address, happening.queue),
            },
        )

    def _queue_requested(self, session: Session, happening: QueueRequested, inbox_id: int | None) -> None:
        """`#queue` alone to a plain gateway address: a receipt about no ticket, with the queue."""
        context = {
            "marker": REPLY_MARKER,
            "desk": self.sender.name or "Support",
            "ref": None,
            "applied": list(happening.lines),
            "refused": [],
            **self._staff_queue(session, happening.staff.address, happening.scope),
        }
        subject = "Your queue" if happening.scope == "mine" else "The queue"
        self.queue_answer(
            session, "command_result", happening.staff, inbox_id=inbox_id, subject=subject,
            answers=happening.message_id, context=context,
        )  # fmt: skip

    def _staff_queue(self, session: Session, staff: str, scope: str | None) -> dict[str, Any]:
        """The template variables of `#queue` (scope "all") and `#queue mine`: the open tickets in
        queue order, read with the staff CLI's own query (`tickets list`); none without a scope."""
        if scope is None:
            return {"queue": None, "queue_scope": None}
        wanted = staff_queries.QueueFilter(
            statuses=OPEN_STATUSES, assignees=(staff.strip().lower(),) if scope == "mine" else ()
        )
        tickets = staff_queries.filtered_queue(session, wanted)
        last = staff_queries.last_customer_message_at(session, [ticket.id for ticket in tickets])
        rows = queue_rows(tickets, prefix=self.prefix, last_customer=last, now=self.clock())
        return {"queue": rows, "queue_scope": scope}

    def _my_tickets(self, session: Session, happening: TicketsRequested, inbox_id: int | None) -> None:
        """The list of the asker's own tickets, to the mail's From (the stage has checked the rest)."""
        to = happening.requester
        outbox.clear_undeliverable(session, to.address)  # they wrote to us again (SPEC §7)
        tickets, total = my_tickets_store.requester_tickets(session, to.address, limit=MY_TICKETS_SHOWN)
        rows = my_tickets_rows(tickets, prefix=self.prefix, timezone=self.settings.views.timezone)
        desk = self.sender.name or "Support"
        context = {
            "marker": REPLY_MARKER,
            "desk": desk,
            "requester_name": to.name,
            "requester_address": to.address,
            "tickets": rows,
            "open_count": sum(1 for row in rows if row["open"]),
            "total": total,
        }
        subject = f"Your tickets with {desk}" if total else f"No tickets with {desk}"
        self.queue_answer(
            session, "my_tickets", to, inbox_id=inbox_id, subject=subject, answers=happening.message_id,
            context=context,
        )  # fmt: skip

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
        address, why = self._mailable(session, to)
        if address is None:
            if why is None:
                log.info("inbox %s: no %s to %s (never notified)", inbox_id, template, to.address)
            else:
                self._skipped(session, ticket.id, template, why, inbox_id)
            return None
        ref = ticket_ref(self.prefix, ticket.id)
        context = {**self._ticket_context(ticket), **extra}
        row = self._new_row(
            session, ticket_id=ticket.id, template=template, address=address, inbox_id=inbox_id,
            context=context, ref=ref, now=self.clock(),
        )  # fmt: skip
        first, latest = _thread_ids(outbox.thread_message_ids(session, ticket.id), trigger)
        root = thread_root_id(ref=ref, domain=self.domain)
        row.subject = subject_for(ref, ticket.title)
        mail_files: dict[str, Any] = {}
        if audience == AUDIENCE_STAFF and trigger is not None and self.blobs is not None:
            files = staff_files(
                session,
                self.blobs,
                trigger,
                limit=self.settings.notifications.max_attached_bytes,
                message_id=row.message_id,
            )
            if files is not None:
                context = {**context, **files.context}
                mail_files = {"files": files.parts}
        # What the message needs besides the template context, kept so a failed render can be redone.
        row.context = {
            **context,
            "_mail": {
                **mail_files,
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
        return outbox.insert(session, row)

    def queue_answer(
        self,
        session: Session,
        template: str,
        to: Address,
        *,
        inbox_id: int | None,
        subject: str,
        context: dict[str, Any],
        answers: str | None = None,
        ref: str | None = None,
        reply_to: str | None = None,
        auto_submitted: str = AUTO_REPLIED,
        now: datetime | None = None,
    ) -> OutboxRow | None:
        """One outbox row about no ticket, rendered: a view asked for by mail (threaded under the
        mail it `answers`, replies to our plain address) or the scheduler's digest. `ref` names it in
        the Message-ID (default: the template), `reply_to` is where replies go (default: our plain
        address). None when `to` must not be mailed (logged)."""
        address, why = self._mailable(session, to)
        if address is None:
            log.info("inbox %s: no %s to %s (%s)", inbox_id, template, to.address, why or "never notified")
            return None
        row = self._new_row(
            session, ticket_id=None, template=template, address=address, inbox_id=inbox_id,
            context=context, ref=ref or template, now=now or self.clock(),
        )  # fmt: skip
        row.subject = subject
        row.context = {
            **context,
            "_mail": {
                "to_name": to.name,
                "reply_to": reply_to or self.base_address,
                "in_reply_to": answers,
                "references": [answers] if answers else [],
                "auto_submitted": auto_submitted,  # auto-replied: a direct answer to a mail (RFC 3834)
            },
        }
        self.render_row(row)
        return outbox.insert(session, row)

    def _mailable(self, session: Session, to: Address) -> tuple[str | None, str | None]:
        """(the address to mail, None), or (None, why not); why is None for an address that is never
        notified (ours, a null sender, mailer-daemon and the like: SPEC §7), which is not news."""
        if not should_notify(to.address, ours=self.ours):
            return None, None
        try:
            address = safe_address(to.address)
        except UnsafeAddress as exc:
            return None, str(exc)
        bounced = outbox.undeliverable_reason(session, address)
        if bounced is not None:
            return None, f"{address} is undeliverable ({bounced})"
        return address, None

    def _new_row(
        self,
        session: Session,
        *,
        ticket_id: int | None,
        template: str,
        address: str,
        inbox_id: int | None,
        context: dict[str, Any],
        ref: str,
        now: datetime,
    ) -> OutboxRow:
        """The outbox row with its deadline, its Message-ID and its own VERP envelope sender; not yet
        stored: the caller renders it, then `outbox.insert`s it whole (one INSERT per notification)."""
        row = outbox.draft(
            session,
            ticket_id=ticket_id,
            template=template,
            to_address=address,
            deadline=now + timedelta(hours=self.settings.notifications.deadline_hours),
            inbox_id=inbox_id,
            context=context,
        )
        row.message_id = new_message_id(ref=ref, outbox_id=row.id, domain=self.domain)
        row.envelope_from = verp_address(self.base_address, outbox_id=row.id, secret=self.secret)
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
        files = [FilePart(**part) for part in mail.get("files", ())]
        try:
            row.raw = build_message(headers, self.renderer.render(row.template, context), files)
        except RenderError as exc:
            log.error("outbox %d: %s", row.id, exc)
            row.raw = b""
            row.status = outbox.FAILED
            row.last_error = str(exc)
            return False
        return True

    # --- who ----------------------------------------------------------------------------------------

    def _handlers(self, ticket: Ticket) -> list[Address]:
        """Who handles `ticket`: its assignee, else triage (else every staff address)."""
        return [Address(ticket.assignee)] if ticket.assignee else self.staff_list()

    def staff_list(self) -> list[Address]:
        """Who staff mail with no assignee goes to: triage, else every staff address."""
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

    def _account_manager(self, ticket: Ticket) -> tuple[str, str] | None:
        """(address, why) of the account manager of an Enterprise ticket's customer, if any."""
        if ticket.tier != Tier.ENTERPRISE.value:
            return None
        customer = self.settings.customers.lookup(ticket.requester_address)
        if customer is None or not customer.account_manager:
            return None
        name = f" {customer.name}" if customer.name else ""
        return customer.account_manager, f"Enterprise customer{name}"

    def _on_call(self, ticket: Ticket) -> list[Address]:
        """Who is told at once of a new Urgent money or security ticket: `staff.on_call`, else triage
        (else every staff address); nobody for other tickets."""
        if ticket.priority != Priority.URGENT.value or ticket.category.casefold() not in ON_CALL_CATEGORIES:
            return []
        on_call = self.settings.staff.on_call
        return [Address(on_call)] if on_call else self.staff_list()

    def _escalations(self, ticket: Ticket) -> list[tuple[str, str]]:
        found: dict[str, str] = {}
        manager = self._account_manager(ticket)
        if manager is not None:
            found[manager[0].lower()] = manager[1]
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
