"""What the staff CLI reads and writes beyond the mail path (SPEC §12, "The CLI for staff"): the queue
with filters, the undeliverable addresses, and the inbox row that keeps a `tickets update` as a mail.

Kept apart from `tickets.py` (the hot path every mail takes) so the two can change independently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from gateway.store.models import InboxItem, Message, Ticket, UndeliverableAddress, utcnow

CLI_SOURCE = "cli"  # the inbox source of a `tickets update`


@dataclass(frozen=True)
class QueueFilter:
    """Every field narrows the queue; several values of one field are alternatives (OR).

    `assignees` holds lower-case addresses, and None for "unassigned"; `search` matches the title and
    every message's text, case-insensitively (SQLite folds ASCII letters only).
    """

    statuses: Sequence[str] = ()
    priorities: Sequence[str] = ()
    categories: Sequence[str] = ()
    tiers: Sequence[str] = ()
    assignees: Sequence[str | None] = ()
    requesters: Sequence[str] = field(default=())  # lower case
    since: datetime | None = None
    search: str | None = None


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filtered_queue(session: Session, wanted: QueueFilter) -> Sequence[Ticket]:
    """Tickets matching `wanted`, in queue order (priority, tier, age), as `tickets.queue` orders them."""
    query = (
        select(Ticket)
        .options(selectinload(Ticket.screenshots), selectinload(Ticket.attachments))
        .options(selectinload(Ticket.rejected_attachments), selectinload(Ticket.merged_from))
        .order_by(Ticket.priority_rank, Ticket.tier_rank, Ticket.created_at, Ticket.id)
    )
    if wanted.statuses:
        query = query.where(Ticket.status.in_(wanted.statuses))
    if wanted.priorities:
        query = query.where(Ticket.priority.in_(wanted.priorities))
    if wanted.categories:
        query = query.where(Ticket.category.in_(wanted.categories))
    if wanted.tiers:
        query = query.where(Ticket.tier.in_(wanted.tiers))
    if wanted.assignees:
        addresses = [a for a in wanted.assignees if a is not None]
        alternatives = [func.lower(Ticket.assignee).in_(addresses)] if addresses else []
        if None in wanted.assignees:
            alternatives.append(Ticket.assignee.is_(None))
        query = query.where(or_(*alternatives))
    if wanted.requesters:
        query = query.where(func.lower(Ticket.requester_address).in_(wanted.requesters))
    if wanted.since is not None:
        query = query.where(Ticket.created_at >= wanted.since)
    if wanted.search:
        pattern = _like_pattern(wanted.search)
        in_messages = exists().where(Message.ticket_id == Ticket.id, Message.text.ilike(pattern, escape="\\"))
        query = query.where(or_(Ticket.title.ilike(pattern, escape="\\"), in_messages))
    return session.scalars(query).all()


def last_customer_message_at(session: Session, ticket_ids: Sequence[int]) -> dict[int, datetime]:
    """When each ticket last heard from the customer side (a mail by its requester or someone copied,
    not staff, not an auto-reply); tickets without one are absent (they wait since they opened)."""
    if not ticket_ids:
        return {}
    query = (
        select(Message.ticket_id, func.max(Message.created_at))
        .where(
            Message.ticket_id.in_(ticket_ids),
            Message.role.in_(("requester", "cc")),
            Message.kind == "mail",
        )
        .group_by(Message.ticket_id)
    )
    return {ticket_id: at for ticket_id, at in session.execute(query) if ticket_id is not None and at}


def undeliverable(session: Session) -> Sequence[UndeliverableAddress]:
    """Addresses a permanent bounce named, oldest first."""
    query = select(UndeliverableAddress).order_by(UndeliverableAddress.since, UndeliverableAddress.address)
    return session.scalars(query).all()


def record_cli_mail(session: Session, *, raw: bytes, author: str, ticket_id: int, message_id: str) -> int:
    """Keep a staff entry made with the CLI as an inbox row, processed at once: every message keeps
    its full original (SPEC §1), and `tickets export` writes it like any mail. Returns its id."""
    now = utcnow()
    item = InboxItem(
        received_at=now,
        source=CLI_SOURCE,
        mail_from=author,
        rcpt_tos=[],
        raw=raw,
        size=len(raw),
        state="done",
        attempts=1,
        next_attempt_at=now,
        message_id=message_id,
        outcome="reply",
        ticket_id=ticket_id,
        processed_at=now,
    )
    session.add(item)
    session.flush()
    return item.id


def originals(session: Session, ticket_id: int) -> list[tuple[int, bytes]]:
    """(message row id, the full original mail) of every message on a ticket, in order."""
    rows = session.execute(
        select(Message.id, InboxItem.raw)
        .join(InboxItem, InboxItem.id == Message.inbox_id)
        .where(Message.ticket_id == ticket_id)
        .order_by(Message.id)
    )
    return [(message_id, raw) for message_id, raw in rows]
