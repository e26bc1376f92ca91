"""What a reply and a status change cause (SPEC §7, §13): `staff_reply` to the requester with the
participants in Cc, `requester_reply` to whoever handles the ticket, and `status_changed`."""

from __future__ import annotations

import logging
import textwrap
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.domain import (
    Address,
    ReplyAdded,
    Role,
    Status,
    StatusChanged,
    Visibility,
)
from gateway.notify.planner_values import Known, Shown, fileless
from gateway.present import ticket_ref
from gateway.reply_address import AUDIENCE_REQUESTER, AUDIENCE_STAFF
from gateway.store import outbox
from gateway.store.models import Message, Ticket
from gateway.store.participants import participants

if TYPE_CHECKING:
    from gateway.notify.planner import NotificationPlanner

log = logging.getLogger(__name__)

TOLD_STATUSES = frozenset({Status.RESOLVED.value, Status.CLOSED.value})
QUOTE_WIDTH = 70  # 72 columns with the "> " mark
QUOTED_LINES = 40  # a long message is quoted up to here: the whole of it is on the ticket


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
        shown = requester_side(planner, session, ticket)
        recipients = [person for person in (shown.to, *shown.cc) if person.address.lower() != author]
        extra = {
            "text": text,
            "author_name": happening.author.name,
            "new_status": new_status if new_status in TOLD_STATUSES else None,
            "merged_into": _merged_into_ref(planner, ticket, new_status),
            "quoted": quoted_before(session, ticket.id, happening.message_db_id),
        }
        queued = planner.queue_all(
            session, ticket, "staff_reply", recipients, AUDIENCE_REQUESTER, inbox_id=inbox_id,
            trigger=happening.message_db_id, extra=extra, shown=shown,
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
        known=Known(without_files=fileless(happening.message_db_id, happening.has_files)),
    )
    return False


def status_changed(
    planner: NotificationPlanner, session: Session, happening: StatusChanged, inbox_id: int | None
) -> None:
    """Resolved or Closed (or merged, which closes): the requester, with the participants in Cc."""
    if happening.new not in TOLD_STATUSES or happening.old == happening.new:
        return
    ticket = session.get_one(Ticket, happening.ticket_id)
    shown = requester_side(planner, session, ticket)
    merged = ticket_ref(planner.prefix, happening.merged_into) if happening.merged_into else None
    planner.queue_all(
        session, ticket, "status_changed", [shown.to, *shown.cc], AUDIENCE_REQUESTER, inbox_id=inbox_id,
        trigger=None, extra={"old": happening.old, "new": happening.new, "merged_into": merged}, shown=shown,
    )  # fmt: skip


def requester_side(planner: NotificationPlanner, session: Session, ticket: Ticket) -> Shown:
    """The requester (To) and the ticket's participants (Cc: SPEC §13), unless
    `notifications.copy_participants` is false; participants are never staff (pipeline/copies.py)."""
    requester = Address(ticket.requester_address, ticket.requester_name)
    if not planner.settings.notifications.copy_participants:
        return Shown(requester, ())
    people = participants(session, ticket.id)
    return Shown(requester, tuple(Address(person.address, person.name) for person in people))


def quoted_before(session: Session, ticket_id: int, message_db_id: int) -> dict[str, str] | None:
    """The last public message on the ticket before `message_db_id`, for `staff_reply` to quote under
    the staff text (SPEC §13 Quoting): never an internal note, never an auto-reply, never empty."""
    message = session.scalars(
        select(Message)
        .where(
            Message.ticket_id == ticket_id,
            Message.id < message_db_id,
            Message.kind == "mail",
            Message.visibility == Visibility.PUBLIC.value,
            Message.text != "",
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    if message is None:
        return None
    text = "\n".join(message.text.strip().splitlines()[:QUOTED_LINES])
    return {
        "author": message.author_name or message.author_address,
        "date": message.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "text": text,
        "quoted_text": quote_lines(text),
    }


def quote_lines(text: str) -> str:
    """`text` as `> ` lines for the plain-text part, each wrapped to fit 72 columns with its mark
    (a word is never broken; a blank line stays a bare `>`)."""
    out: list[str] = []
    for line in text.splitlines():
        wrapped = textwrap.wrap(line, QUOTE_WIDTH, break_long_words=False, break_on_hyphens=False)
        out.extend(f"> {part}" for part in wrapped or [""])
    out = [line.rstrip() for line in out]
    return "\n".join(out)


def _merged_into_ref(planner: NotificationPlanner, ticket: Ticket, new_status: str | None) -> str | None:
    if new_status != Status.CLOSED.value or ticket.merged_into_id is None:
        return None
    return ticket_ref(planner.prefix, ticket.merged_into_id)
