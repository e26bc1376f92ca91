"""What a reply and a status change cause (SPEC §7, §13): `staff_reply` to the requester with the
participants in Cc, `requester_reply` to whoever handles the ticket, and `status_changed`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from gateway.domain import (
    Address,
    ReplyAdded,
    Role,
    Status,
    StatusChanged,
    Visibility,
)
from gateway.reply_address import AUDIENCE_REQUESTER, AUDIENCE_STAFF
from gateway.store import outbox
from gateway.store.models import Message, Ticket

if TYPE_CHECKING:
    from gateway.notify.planner import NotificationPlanner

log = logging.getLogger(__name__)

TOLD_STATUSES = frozenset({Status.RESOLVED.value, Status.CLOSED.value})


def reply_added(
    planner: NotificationPlanner,
    session: Session,
    happening: ReplyAdded,
    inbox_id: int | None,
    new_status: str | None,
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
            person for person in requester_side(planner, session, ticket) if person.address.lower() != author
        ]
        extra = {
            "text": text,
            "author_name": happening.author.name,
            "new_status": new_status if new_status in TOLD_STATUSES else None,
        }
        queued = planner.queue_all(
            session, ticket, "staff_reply", recipients, AUDIENCE_REQUESTER, inbox_id=inbox_id,
            trigger=happening.message_db_id, extra=extra,
        )  # fmt: skip
        return queued > 0
    if happening.visibility != Visibility.PUBLIC:
        return False
    staff = planner.handlers(ticket)
    manager = planner.account_manager(ticket)
    if manager is not None:  # SPEC §12: every customer message on an Enterprise ticket
        staff.append(Address(manager[0]))
    planner.queue_all(
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


def status_changed(
    planner: NotificationPlanner, session: Session, happening: StatusChanged, inbox_id: int | None
) -> None:
    if happening.new not in TOLD_STATUSES or happening.old == happening.new:
        return
    ticket = session.get_one(Ticket, happening.ticket_id)
    planner.queue(
        session,
        ticket,
        "status_changed",
        Address(ticket.requester_address, ticket.requester_name),
        AUDIENCE_REQUESTER,
        inbox_id=inbox_id,
        trigger=None,
        extra={"old": happening.old, "new": happening.new},
    )


def requester_side(planner: NotificationPlanner, session: Session, ticket: Ticket) -> list[Address]:
    """The requester and everyone copied on the conversation (never staff)."""
    people = [Address(ticket.requester_address, ticket.requester_name)]
    for message in outbox.ticket_messages(session, ticket.id):
        if (
            message.role == Role.CC
            and message.kind == "mail"
            and not planner.settings.is_staff(message.author_address)
        ):
            people.append(Address(message.author_address, message.author_name))
    return people
