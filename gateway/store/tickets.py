"""Reads and writes of tickets, their messages, files and events, inside a caller's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.domain import Priority, Status, Tier
from gateway.store.models import (
    Event,
    InboxItem,
    Message,
    SeenMail,
    Ticket,
    utcnow,
)


def dedup_key(message_id: str | None, content_hash: str) -> str:
    """The identity of a mail: its Message-ID together with its content (SPEC §2 Idempotence)."""
    return hashlib.sha256(f"{message_id or ''}\0{content_hash}".encode()).hexdigest()


def find_seen(session: Session, key: str) -> SeenMail | None:
    return session.scalar(select(SeenMail).where(SeenMail.dedup_key == key))


def message_id_reused(session: Session, message_id: str, content_hash: str) -> SeenMail | None:
    """An earlier, different mail that carried the same Message-ID (some senders reuse them)."""
    return session.scalar(
        select(SeenMail)
        .where(SeenMail.message_id == message_id, SeenMail.content_hash != content_hash)
        .limit(1)
    )


def record_seen(
    session: Session,
    *,
    key: str,
    message_id: str | None,
    content_hash: str,
    inbox_id: int,
    outcome: str,
    ticket_id: int | None,
) -> None:
    session.add(
        SeenMail(
            dedup_key=key,
            message_id=message_id[:998] if message_id else None,
            content_hash=content_hash,
            inbox_id=inbox_id,
            outcome=outcome,
            ticket_id=ticket_id,
        )
    )


def create_ticket(
    session: Session,
    *,
    title: str,
    description: str,
    priority: Priority,
    category: str,
    tier: Tier,
    requester_address: str,
    requester_name: str,
    created_at: datetime,
) -> Ticket:
    ticket = Ticket(
        title=title,
        description=description,
        priority=priority.value,
        priority_rank=priority.rank,
        category=category,
        status=Status.OPEN.value,
        tier=tier.value,
        tier_rank=tier.rank,
        requester_address=requester_address[:320],
        requester_name=requester_name[:300],
        created_at=created_at,
        updated_at=created_at,
    )
    session.add(ticket)
    session.flush()
    return ticket


def add_message(
    session: Session,
    *,
    ticket_id: int | None,
    inbox_id: int,
    message_id: str | None,
    kind: str,
    author_address: str,
    author_name: str,
    role: str,
    visibility: str,
    subject: str,
    text: str,
    threaded_by: str,
) -> Message:
    message = Message(
        ticket_id=ticket_id,
        inbox_id=inbox_id,
        message_id=message_id[:998] if message_id else None,
        kind=kind,
        author_address=author_address[:320],
        author_name=author_name[:300],
        role=role,
        visibility=visibility,
        subject=subject,
        text=text,
        threaded_by=threaded_by,
    )
    session.add(message)
    session.flush()
    return message


def add_event(
    session: Session,
    *,
    ticket_id: int,
    kind: str,
    actor: str,
    field: str | None = None,
    old: str | None = None,
    new: str | None = None,
    inbox_id: int | None = None,
) -> None:
    session.add(
        Event(
            ticket_id=ticket_id,
            kind=kind,
            field=field,
            old=old,
            new=new,
            actor=actor,
            inbox_id=inbox_id,
            created_at=utcnow(),
        )
    )


def ticket_for_message_ids(session: Session, message_ids: Iterable[str]) -> Ticket | None:
    """The ticket a stored message with one of these Message-IDs belongs to (latest reference first)."""
    wanted = [mid for mid in message_ids if mid]
    if not wanted:
        return None
    rows = session.execute(
        select(Message.message_id, Message.ticket_id).where(
            Message.message_id.in_(wanted), Message.ticket_id.is_not(None)
        )
    ).all()
    by_id = {row.message_id: row.ticket_id for row in rows}
    for mid in reversed(wanted):
        if mid in by_id:
            return session.get(Ticket, by_id[mid])
    return None


def mark_inbox_done(
    session: Session,
    *,
    inbox_id: int,
    outcome: str,
    ticket_id: int | None,
    message_id: str | None,
    note: str | None = None,
) -> None:
    item = session.get_one(InboxItem, inbox_id)
    item.state = "done"
    item.outcome = outcome
    item.ticket_id = ticket_id
    item.message_id = message_id[:998] if message_id else None
    item.lease_until = None
    item.error = note
    item.error_detail = None
    item.processed_at = utcnow()


def queue(session: Session, *, status: str | None = None) -> Sequence[Ticket]:
    """Tickets in queue order: priority (Urgent first), tier (Enterprise first), age (oldest first)."""
    query = (
        select(Ticket)
        .options(selectinload(Ticket.screenshots), selectinload(Ticket.attachments))
        .options(selectinload(Ticket.rejected_attachments))
        .order_by(Ticket.priority_rank, Ticket.tier_rank, Ticket.created_at, Ticket.id)
    )
    if status is not None:
        query = query.where(Ticket.status == status)
    return session.scalars(query).all()


def load_ticket(session: Session, ticket_id: int) -> Ticket | None:
    """One ticket with everything `tickets show` prints."""
    return session.scalar(
        select(Ticket)
        .where(Ticket.id == ticket_id)
        .options(
            selectinload(Ticket.messages),
            selectinload(Ticket.events),
            selectinload(Ticket.screenshots),
            selectinload(Ticket.attachments),
            selectinload(Ticket.rejected_attachments),
        )
    )
