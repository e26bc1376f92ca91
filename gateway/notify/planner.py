"""Turns happenings into outbox rows, inside the mail's own transaction (the `Notifier` of the
processor). Who is told what (SPEC §7) and every reason not to send — loop signals, our own and
machine addresses, the per-sender acknowledgement limit, addresses that bounced for good — are
decided here and nowhere else.

What each kind of happening causes is in its own module under `gateway/notify/kinds/` (new ticket,
replies and status changes, receipts, bounces, overdue responses); this module dispatches to them and
holds what they share: queueing, rendering, and who handles a ticket.

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
from gateway.config.validators import is_domain
from gateway.domain import (
    REPLY_MARKER,
    Address,
    BounceReceived,
    CommandResult,
    EventKind,
    Happening,
    QueueRequested,
    ReplyAdded,
    ResponseOverdue,
    StatusChanged,
    TicketOpened,
    TicketsRequested,
    Tier,
)
from gateway.notify.kinds import bounces, new_ticket, overdue, receipts, replies
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
from gateway.notify.planner_values import NOTHING_KNOWN, Known, Shown
from gateway.notify.render import Renderer, RenderError
from gateway.notify.staff_files import staff_files
from gateway.present import ticket_ref
from gateway.reply_address import (
    AUDIENCE_STAFF,
    reply_address,
    verp_address,
)
from gateway.store import outbox
from gateway.store import tickets as ticket_store
from gateway.store.blobs import BlobStore
from gateway.store.models import OutboxRow, Ticket, utcnow

log = logging.getLogger(__name__)

# Templates sent in direct answer to a mail (RFC 3834 "auto-replied"); the rest are "auto-generated".
_ANSWERS = frozenset({"ticket_created", "command_result"})


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
        # Only `support@*`-style addresses (the embedded defaults): no domain of our own to answer
        # from, so a ticket's mail answers from the address its customer wrote to.
        self.answer_from_recipient = all(a.endswith("@*") for a in settings.gateway.addresses)

    # --- the Notifier protocol -----------------------------------------------------------------

    def batch_begins(self, session: Session, senders: Sequence[str], *, read_ahead: bool) -> None:
        """A batch of mails from `senders` begins in `session`'s transaction, which is rolled back
        whole if any of its work fails. The notifications it queues are written together when it
        ends (`hold_inserts`): one statement rather than two per new ticket. With `read_ahead`,
        what its notifications look at is read at once: the undeliverable marks of the senders
        (cleared when they write) and of staff (gateway/store/outbox.py, `know_undeliverable`), one
        statement for the batch rather than two per mail, and the acknowledgements each sender
        had this hour (`know_recent`; the batch holds their locks already)."""
        if read_ahead:
            staff = self.settings.staff
            named = (staff.triage, staff.on_call, staff.security_contact)
            outbox.know_undeliverable(
                session, [*senders, *staff.addresses, *(address for address in named if address)]
            )
            since = self.clock() - new_ticket.ACK_WINDOW
            outbox.know_recent(session, senders, template=new_ticket.ACK_TEMPLATE, since=since)
        outbox.hold_inserts(session)

    def batch_ends(self, session: Session) -> None:
        """The batch `batch_begins` began is about to commit: write what it held back."""
        outbox.write_held(session)

    def plan(self, session: Session, happenings: Sequence[Happening], *, inbox_id: int | None) -> None:
        # inbox_id is None when no mail caused the happenings (the scheduler's auto-close).
        # A staff reply and a status change from the same mail reach the requester as one mail.
        told_status = {h.ticket_id: h.new for h in happenings if isinstance(h, StatusChanged)}
        replied_to_requester: set[int] = set()
        # Status changes last, whatever order the stages recorded them in, so the check holds.
        ordered = sorted(happenings, key=lambda h: isinstance(h, StatusChanged))
        for happening in ordered:
            if isinstance(happening, TicketOpened):
                new_ticket.ticket_opened(self, session, happening, inbox_id)
            elif isinstance(happening, ReplyAdded):
                if replies.reply_added(
                    self, session, happening, inbox_id, told_status.get(happening.ticket_id)
                ):
                    replied_to_requester.add(happening.ticket_id)
            elif isinstance(happening, StatusChanged):
                if happening.ticket_id not in replied_to_requester:
                    replies.status_changed(self, session, happening, inbox_id)
            elif isinstance(happening, CommandResult):
                receipts.command_result(self, session, happening, inbox_id)
            elif isinstance(happening, BounceReceived):
                bounces.bounce(self, session, happening)
            elif isinstance(happening, TicketsRequested):
                receipts.my_tickets(self, session, happening, inbox_id)
            elif isinstance(happening, QueueRequested):
                receipts.queue_requested(self, session, happening, inbox_id)
            elif isinstance(happening, ResponseOverdue):
                overdue.response_overdue(self, session, happening)

    # --- queueing ----------------------------------------------------------------------------------

    def queue_all(
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
        shown: Shown | None = None,
        known: Known = NOTHING_KNOWN,
    ) -> int:
        """One row per recipient (each its own bounce address), all with the same `shown` To and Cc."""
        seen: set[str] = set()
        queued = 0
        for person in recipients:
            if person.address.lower() in seen:
                continue
            seen.add(person.address.lower())
            if self.queue(
                session, ticket, template, person, audience, inbox_id=inbox_id, trigger=trigger,
                extra=extra, shown=shown, known=known,
            ):  # fmt: skip
                queued += 1
        return queued

    def queue(
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
        shown: Shown | None = None,
        known: Known = NOTHING_KNOWN,
    ) -> OutboxRow | None:
        """One outbox row, rendered; None when the recipient must not be mailed (and why is recorded).
        `shown`: the To and Cc its headers show, when they are not just `to` (SPEC §13 Copies);
        `known`: what this mail has just written, not read back (planner_values.Known)."""
        address, why = self.mailable(session, to, known)
        if address is None:
            if why is None:
                log.info("inbox %s: no %s to %s (never notified)", inbox_id, template, to.address)
            else:
                self.skipped(session, ticket.id, template, why, inbox_id)
            return None
        ref = ticket_ref(self.prefix, ticket.id)
        context = {**self._ticket_context(ticket), **extra}
        base = self.ticket_base_address(session, ticket.id)
        row = self._new_row(
            session, ticket_id=ticket.id, template=template, address=address, inbox_id=inbox_id,
            context=context, ref=ref, now=self.clock(), base=base,
        )  # fmt: skip
        if known.opening is not None and known.opening[0] == trigger:  # the thread's first is the trigger
            first = latest = known.opening[1]
        else:
            first, latest = _thread_ids(outbox.thread_message_ids(session, ticket.id), trigger)
        root = thread_root_id(ref=ref, domain=base.rpartition("@")[2])
        row.subject = subject_for(ref, ticket.title)
        mail_files: dict[str, Any] = {}
        if (
            audience == AUDIENCE_STAFF
            and trigger is not None
            and self.blobs is not None
            and trigger not in known.without_files
        ):
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
                **(shown.context() if shown is not None else {}),
                **({"from": base} if base != self.base_address else {}),
                "reply_to": reply_address(
                    base,
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
        return outbox.insert(session, row, keep=False)  # read by callers, never changed

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
        address, why = self.mailable(session, to)
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
        return outbox.insert(session, row, keep=False)  # read by callers, never changed

    def ticket_base_address(self, session: Session, ticket_id: int) -> str:
        """Where a ticket's mail comes from and replies and bounces go back to: our base address,
        or, where we have only `support@*`, that local part at the domain the customer wrote to
        (support@smilepass.example, not support@localhost); the base address when no envelope
        recipient of the ticket's first mail is ours."""
        if not self.answer_from_recipient:
            return self.base_address
        local = self.base_address.rpartition("@")[0]
        for recipient in outbox.first_recipients(session, ticket_id):
            domain = recipient.rpartition("@")[2].lower()
            if self.ours.match(recipient) is not None and is_domain(domain):
                return f"{local}@{domain}"
        return self.base_address

    def mailable(
        self, session: Session, to: Address, known: Known = NOTHING_KNOWN
    ) -> tuple[str | None, str | None]:
        """(the address to mail, None), or (None, why not); why is None for an address that is never
        notified (ours, a null sender, mailer-daemon and the like: SPEC §7), which is not news. An
        address in `known.deliverable` was cleared by this very mail: no mark to look for."""
        if not should_notify(to.address, ours=self.ours):
            return None, None
        try:
            address = safe_address(to.address)
        except UnsafeAddress as exc:
            return None, str(exc)
        if outbox.undeliverable_key(address) in known.deliverable:
            return address, None
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
        base: str | None = None,
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
        base = base or self.base_address
        row.message_id = new_message_id(ref=ref, outbox_id=row.id, domain=base.rpartition("@")[2])
        row.envelope_from = verp_address(base, outbox_id=row.id, secret=self.secret)
        return row

    def render_row(self, row: OutboxRow) -> bool:
        """(Re)build `row.raw` from its context; on a template error the row is failed with it."""
        context = {key: value for key, value in row.context.items() if key != "_mail"}
        mail = row.context["_mail"]
        shown_to = mail.get("to_header")
        headers = Headers(
            sender=Address(mail["from"], self.sender.name) if "from" in mail else self.sender,
            to=Address(*shown_to) if shown_to else Address(row.to_address, mail["to_name"]),
            cc=tuple(Address(*person) for person in mail.get("cc", ())),
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

    def handlers(self, ticket: Ticket) -> list[Address]:
        """Who handles `ticket`: its assignee, else triage (else every staff address)."""
        return [Address(ticket.assignee)] if ticket.assignee else self.staff_list()

    def staff_list(self) -> list[Address]:
        """Who staff mail with no assignee goes to: triage, else every staff address."""
        staff = self.settings.staff
        if staff.triage:
            return [Address(staff.triage)]
        return [Address(address) for address in staff.addresses]

    def account_manager(self, ticket: Ticket) -> tuple[str, str] | None:
        """(address, why) of the account manager of an Enterprise ticket's customer, if any."""
        if ticket.tier != Tier.ENTERPRISE.value:
            return None
        customer = self.settings.customers.lookup(ticket.requester_address)
        if customer is None or not customer.account_manager:
            return None
        name = f" {customer.name}" if customer.name else ""
        return customer.account_manager, f"Enterprise customer{name}"

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

    def skipped(
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
