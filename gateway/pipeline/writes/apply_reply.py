"""Applying a reply plan to a ticket: the ticket row, the message, the events and the happenings.

A reply by mail (the reply stage) and `ticketgate tickets update` (the staff CLI) both end here, so
the same plan always makes the same writes and the same notifications (SPEC §5, §12): there is one
way a ticket changes because someone answered it or commanded it, whatever the way they came in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.domain import Address, EventKind, ParsedMail, Priority, Status
from gateway.pipeline.happenings import CommandResult, Happening, ReplyAdded, StatusChanged
from gateway.pipeline.reply_plan import ReplyPlan, TicketState
from gateway.pipeline.staff_auth import StaffAuth
from gateway.pipeline.writes.copies_merges import apply_copies, apply_merge
from gateway.store import tickets as store
from gateway.store.models import Message, Ticket, utcnow


def lock_ticket(session: Session, ticket_id: int) -> tuple[Ticket, TicketState]:
    """The ticket, locked (PostgreSQL) and read afresh, and the fields a reply can change.

    Two replies to one ticket at once (two mails, or a mail and the CLI) must not lose a change.
    On SQLite the transaction has held the database's write lock since its BEGIN IMMEDIATE, so a
    copy this transaction read already (threading read it) is current: no second read for it.
    """
    if session.get_bind().dialect.name == "sqlite":
        ticket = session.get_one(Ticket, ticket_id)
    else:
        ticket = session.get_one(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    state = TicketState(
        id=ticket.id,
        status=Status(ticket.status),
        priority=Priority(ticket.priority),
        category=ticket.category,
        assignee=ticket.assignee,
        requester=ticket.requester_address,
    )
    return ticket, state


@dataclass(frozen=True)
class AppliedReply:
    message: Message
    happenings: tuple[Happening, ...]  # for the notification planner, in the caller's transaction


def apply_reply(
    session: Session,
    ticket: Ticket,
    plan: ReplyPlan,
    *,
    author: Address,
    staff: StaffAuth,
    inbox_id: int,
    message_id: str | None,
    subject: str,
    threaded_by: str,
    notify: bool,
    settings: Settings,
    ours: GatewayAddresses,
    mail: ParsedMail | None = None,
) -> AppliedReply:
    """Write what `plan` decided: the ticket's fields, the message, one event per change and refusal,
    the participants it adds or removes (`mail`'s Cc too, SPEC §13) and a merge; return the
    happenings the notification planner turns into mail."""
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
        session,
        ticket_id=ticket.id,
        inbox_id=inbox_id,
        message_id=message_id,
        kind="mail",
        author_address=author.address,
        author_name=author.name,
        role=plan.role,
        visibility=plan.visibility,
        subject=subject,
        text=plan.text,
        threaded_by=threaded_by,
    )
    actor = author.address
    events: list[dict[str, Any]] = []  # written together, in this order

    def event(
        kind: EventKind, field: str | None = None, old: str | None = None, new: str | None = None
    ) -> None:
        events.append(
            store.event_row(
                ticket_id=ticket.id, kind=kind, field=field, old=old, new=new, actor=actor, inbox_id=inbox_id
            )
        )

    if staff.staff_address and not staff.is_staff:
        event(EventKind.UNAUTHENTICATED_STAFF, new=staff.reason)
    for change in plan.changes:
        event(change.kind, change.field, change.old, change.new)
    for refusal in plan.refused:
        event(EventKind.COMMAND_REFUSED, refusal.field, None, f"{refusal.line} — {refusal.reason}")
    events += apply_copies(
        session, ticket, plan, mail=mail, author=author, settings=settings, ours=ours, inbox_id=inbox_id
    )
    if plan.merged_into is not None:
        prefix = settings.gateway.ticket_prefix
        events += apply_merge(
            session, ticket, plan.merged_into, author=author, inbox_id=inbox_id, prefix=prefix
        )
    store.add_events(session, events)

    happenings: list[Happening] = [
        ReplyAdded(
            ticket_id=ticket.id,
            message_db_id=message.id,
            author=author,
            role=plan.role,
            visibility=plan.visibility,
            notify=notify,
        )
    ]
    for change in plan.status_changes:
        merged = plan.merged_into if change.new == Status.CLOSED.value else None
        happenings.append(StatusChanged(ticket.id, change.old or "", change.new or "", actor, merged))
    if plan.receipt:
        happenings.append(
            CommandResult(
                ticket_id=ticket.id,
                staff=author,
                applied=plan.applied,
                refused=tuple((r.line, r.reason) for r in plan.refused),
                queue=plan.queue,
            )
        )
    return AppliedReply(message, tuple(happenings))
