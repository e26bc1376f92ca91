"""What the scheduler's escalations and daily digest read and record (SPEC §12): the open tickets no
staff member has answered yet, the digest's lists, and the once-only marks (`done_once`).

A mark is inserted in the transaction that queues the job's mail, inside a savepoint: when another
node (or this one before a restart) already did the job, the primary key refuses the row, the
savepoint alone rolls back, and the caller queues nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, cast, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Exists

from gateway.domain import DONE_STATUSES, Priority, Status, Tier
from gateway.response_targets import ResponseTargets
from gateway.store.models import DoneOnce, Message, Ticket

ESCALATION = "escalation"
DIGEST = "digest"
_QUEUE_ORDER = (Ticket.priority_rank, Ticket.tier_rank, Ticket.created_at, Ticket.id)


def mark_done_once(session: Session, job: str, key: str, *, at: datetime) -> bool:
    """Record `job` `key` as done; False when it already was (by any node), and nothing changes."""
    try:
        with session.begin_nested():
            session.execute(insert(DoneOnce).values(job=job, key=key, done_at=at))
    except IntegrityError:
        return False
    return True


def is_done(session: Session, job: str, key: str) -> bool:
    return session.get(DoneOnce, (job, key)) is not None


def _answered() -> Exists:
    """A public staff mail on the ticket: its first response."""
    return (
        select(Message.id)
        .where(
            Message.ticket_id == Ticket.id,
            Message.role == "staff",
            Message.visibility == "public",
            Message.kind == "mail",
        )
        .exists()
    )


def unanswered_open(session: Session, *, opened_before: datetime, unescalated: bool) -> list[Ticket]:
    """Tickets neither Resolved nor Closed, opened before `opened_before`, with no public staff reply;
    with `unescalated`, only those not escalated yet. Queue order."""
    query = select(Ticket).where(
        Ticket.status.not_in(DONE_STATUSES), Ticket.created_at <= opened_before, ~_answered()
    )
    if unescalated:
        escalated = (
            select(DoneOnce.key)
            .where(DoneOnce.job == ESCALATION, DoneOnce.key == cast(Ticket.id, String))
            .exists()
        )
        query = query.where(~escalated)
    return list(session.scalars(query.order_by(*_QUEUE_ORDER)))


def overdue_first_responses(
    session: Session, targets: ResponseTargets, *, now: datetime, unescalated: bool
) -> list[tuple[Ticket, datetime]]:
    """Open tickets with no public staff reply whose first response fell due by `now`, with that
    due time, soonest due first; with `unescalated`, only those not escalated yet. Only tickets
    opened at least the shortest target ago are read: no younger one can be due."""
    shortest = min(targets.minutes(priority, tier) for priority in Priority for tier in Tier)
    candidates = unanswered_open(
        session, opened_before=now - timedelta(minutes=shortest), unescalated=unescalated
    )
    due = [(ticket, targets.due(ticket.created_at, ticket.priority, ticket.tier)) for ticket in candidates]
    return sorted(((ticket, at) for ticket, at in due if at <= now), key=lambda pair: pair[1])


def opened_since(session: Session, since: datetime) -> list[Ticket]:
    """Tickets opened at or after `since`, in queue order, whatever their status."""
    return list(session.scalars(select(Ticket).where(Ticket.created_at >= since).order_by(*_QUEUE_ORDER)))


def unassigned_pressing(session: Session) -> list[Ticket]:
    """Open Urgent and High tickets that nobody is assigned to, in queue order."""
    query = select(Ticket).where(
        Ticket.status.not_in(DONE_STATUSES),
        Ticket.assignee.is_(None),
        Ticket.priority.in_((Priority.URGENT.value, Priority.HIGH.value)),
    )
    return list(session.scalars(query.order_by(*_QUEUE_ORDER)))


def waiting_on_us(session: Session, *, limit: int) -> list[tuple[Ticket, datetime]]:
    """Open tickets whose latest public mail is the customer's (not staff's), with that mail's time,
    longest waiting first: the customer spoke last and waits for us."""
    latest = (
        select(Message.ticket_id, func.max(Message.id).label("message_id"))
        .where(Message.ticket_id.is_not(None), Message.kind == "mail", Message.visibility == "public")
        .group_by(Message.ticket_id)
        .subquery()
    )
    query = (
        select(Ticket, Message.created_at)
        .join(latest, latest.c.ticket_id == Ticket.id)
        .join(Message, Message.id == latest.c.message_id)
        .where(
            Ticket.status.not_in((*DONE_STATUSES, Status.WAITING.value)),
            Message.role != "staff",
        )
        .order_by(Message.created_at, Ticket.id)
        .limit(limit)
    )
    return [(ticket, at) for ticket, at in session.execute(query)]


def count_open(session: Session) -> int:
    return (
        session.scalar(select(func.count()).select_from(Ticket).where(Ticket.status.not_in(DONE_STATUSES)))
        or 0
    )
