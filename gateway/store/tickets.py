"""Reads and writes of tickets, their messages, files and events, inside a caller's transaction.

The writes every mail makes (its de-duplication key, ticket, message, events, the inbox row's
outcome) are Core statements built once at import and run on the session's connection: the ORM's
unit of work costs several times the SQL itself per row, and these rows need none of it. Where
later steps of the same transaction want the ORM object (the notification planner reads the
ticket), the inserted row is placed in the session's identity map as loaded, not read back
(gateway/store/rows.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select
from sqlalchemy.orm import Session, selectinload

from gateway.domain import EventKind, Priority, Role, Status, Tier, Visibility
from gateway.store.direct import Direct, run, run_many
from gateway.store.inbox import clip_message_id
from gateway.store.models import (
    Event,
    Message,
    OutboxRow,
    Participant,
    Screenshot,
    SeenMail,
    Ticket,
    utcnow,
)
from gateway.store.rows import attach_inserted, built, execute, in_transaction

_seen = SeenMail.__table__
# The mail's own key first (a duplicate), else an earlier, different mail with its Message-ID (a
# collision): one statement for both, asked of every mail.
_SEEN_OR_REUSED = (
    select(_seen.c.dedup_key, _seen.c.inbox_id, _seen.c.ticket_id)
    .where(
        (_seen.c.dedup_key == bindparam("key"))
        | (
            (_seen.c.message_id == bindparam("message_id"))
            & (_seen.c.content_hash != bindparam("content_hash"))
        )
    )
    .order_by(case((_seen.c.dedup_key == bindparam("key"), 0), else_=1))
    .limit(1)
)
# Run on the DB-API cursor (gateway/store/direct.py): every mail writes these.
_SEEN_OR_REUSED_DIRECT = Direct(_SEEN_OR_REUSED)
_INSERT_SEEN = Direct(insert(_seen))
_INSERT_TICKET = Direct(insert(Ticket.__table__))
_INSERT_MESSAGE = Direct(insert(Message.__table__))
_INSERT_EVENT = Direct(insert(Event.__table__))


@dataclass(frozen=True)
class SeenRow:
    """The first result of a mail already processed."""

    inbox_id: int
    ticket_id: int | None


def dedup_key(message_id: str | None, content_hash: str) -> str:
    """The identity of a mail: its Message-ID together with its content (SPEC §2 Idempotence)."""
    return hashlib.sha256(f"{message_id or ''}\0{content_hash}".encode()).hexdigest()


def seen_before(
    session: Session, key: str, message_id: str | None, content_hash: str
) -> tuple[SeenRow | None, SeenRow | None]:
    """(the first result of this very mail, if it was processed before; else an earlier, different
    mail that carried the same Message-ID, as some senders reuse them), in one query; the mails of
    this transaction whose record is held back (`record_seen(hold=True)`) count as processed before."""
    message_id = clip_message_id(message_id) or None
    kept = in_transaction(session)
    held: dict[str, _Held] = kept.get(_HELD_SEEN_KEY, {})
    if key in held:
        return held[key].row, None
    unseen: set[str] = kept.get(_UNSEEN_IDS_KEY, set())
    # A stored row with this key carries this Message-ID too: none with it, none to find.
    rows = [] if message_id in unseen else run(session, _SEEN_OR_REUSED_DIRECT, {
        "key": key, "message_id": message_id, "content_hash": content_hash
    }).rows  # fmt: skip
    if rows and rows[0][0] == key:
        return SeenRow(rows[0][1], rows[0][2]), None
    if rows:
        return None, SeenRow(rows[0][1], rows[0][2])
    if message_id is not None:
        for other in held.values():
            if other.values["message_id"] == message_id and other.values["content_hash"] != content_hash:
                return None, other.row
    return None, None


def know_seen(session: Session, message_ids: Iterable[str | None]) -> None:
    """Ask once which of these Message-IDs any processed mail carried, and keep the answer for the
    rest of the transaction: `seen_before` then asks nothing for a mail whose Message-ID none did
    (almost every mail of a batch: one statement for the batch instead of one per mail). Only for
    a transaction that is rolled back whole if any of its work fails, as `record_seen(hold=True)`;
    a mail another transaction records meanwhile is seen as at the start of this one, and its
    unique key still stops the same mail twice."""
    wanted = {clipped for message_id in message_ids if (clipped := clip_message_id(message_id))}
    if not wanted:
        return
    query = select(_seen.c.message_id).where(_seen.c.message_id.in_(sorted(wanted))).distinct()
    kept = in_transaction(session)
    kept[_UNSEEN_IDS_KEY] = kept.get(_UNSEEN_IDS_KEY, set()) | (
        wanted - set(execute(session, query).scalars())
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
    hold: bool = False,
) -> None:
    """Remember a processed mail by its de-duplication key. With `hold`, the row is written by
    `write_held_seen` later in the same transaction (for a batch: one executemany at its end
    instead of one INSERT per mail); meanwhile `seen_before` finds it all the same. Only for a
    transaction that is rolled back whole if any of its work fails (the processor's batch without
    savepoints): a savepoint rolled back would not take a held row with it."""
    values = {
        "dedup_key": key,
        "message_id": clip_message_id(message_id),
        "content_hash": content_hash,
        "inbox_id": inbox_id,
        "outcome": outcome,
        "ticket_id": ticket_id,
        "created_at": utcnow(),
    }
    if hold:
        held = in_transaction(session).setdefault(_HELD_SEEN_KEY, {})
        held[key] = _Held(values, SeenRow(inbox_id, ticket_id))
        return
    run(session, _INSERT_SEEN, values)


def write_held_seen(session: Session) -> None:
    """Write the rows `record_seen(hold=True)` held back in this transaction."""
    held: dict[str, _Held] = in_transaction(session).pop(_HELD_SEEN_KEY, {})
    run_many(session, _INSERT_SEEN, [row.values for row in held.values()])


@dataclass(frozen=True)
class _Held:
    values: dict[str, Any]  # the seen_mails row
    row: SeenRow


_HELD_SEEN_KEY = "tickets.held_seen"  # in_transaction: dedup key -> _Held, not written yet
_UNSEEN_IDS_KEY = "tickets.unseen_ids"  # in_transaction: Message-IDs no stored seen row carries


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
    follow_up_of_id: int | None = None,
    possible_follow_up_of_id: int | None = None,
    assignee: str | None = None,
) -> Ticket:
    values = {
        "title": title,
        "description": description,
        "priority": priority.value,
        "priority_rank": priority.rank,
        "category": category,
        "status": Status.OPEN.value,
        "tier": tier.value,
        "tier_rank": tier.rank,
        "requester_address": requester_address[:320],
        "requester_name": requester_name[:300],
        "assignee": assignee,
        "created_at": created_at,
        "updated_at": created_at,
        "follow_up_of_id": follow_up_of_id,
        "possible_follow_up_of_id": possible_follow_up_of_id,
    }
    ticket_id = run(session, _INSERT_TICKET, values).inserted_id
    ticket = built(Ticket, {"id": ticket_id, **values})
    attach_inserted(session, ticket)
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
    role: Role,
    visibility: Visibility,
    subject: str,
    text: str,
    threaded_by: str,
) -> Message:
    """Store a message; the row is also put into the session as loaded (a later step of the mail,
    such as the reply's notification, reads it)."""
    values = _message_values(
        ticket_id=ticket_id, inbox_id=inbox_id, message_id=message_id, kind=kind,
        author_address=author_address, author_name=author_name, role=role, visibility=visibility,
        subject=subject, text=text, threaded_by=threaded_by,
    )  # fmt: skip
    message = built(Message, {"id": run(session, _INSERT_MESSAGE, values).inserted_id, **values})
    attach_inserted(session, message)
    return message


def insert_message(session: Session, **fields: Any) -> int:
    """Store a message (the keywords of `add_message`) that nothing of this mail reads back through
    the session (a new ticket's first message): its row id, and no ORM object built for it."""
    return int(run(session, _INSERT_MESSAGE, _message_values(**fields)).inserted_id)


def _message_values(
    *,
    ticket_id: int | None,
    inbox_id: int,
    message_id: str | None,
    kind: str,
    author_address: str,
    author_name: str,
    role: Role,
    visibility: Visibility,
    subject: str,
    text: str,
    threaded_by: str,
) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "inbox_id": inbox_id,
        "message_id": clip_message_id(message_id),
        "kind": kind,
        "author_address": author_address[:320],
        "author_name": author_name[:300],
        # Stored as the plain strings they stand for; a value outside the enums fails here, not later.
        "role": Role(role).value,
        "visibility": Visibility(visibility).value,
        "subject": subject,
        "text": text,
        "threaded_by": threaded_by,
        "created_at": utcnow(),
    }


def add_event(
    session: Session,
    *,
    ticket_id: int,
    kind: EventKind,
    actor: str,
    field: str | None = None,
    old: str | None = None,
    new: str | None = None,
    inbox_id: int | None = None,
) -> None:
    add_events(
        session,
        [
            event_row(
                ticket_id=ticket_id, kind=kind, actor=actor, field=field, old=old, new=new, inbox_id=inbox_id
            )
        ],
    )


def event_row(
    *,
    ticket_id: int,
    kind: EventKind,
    actor: str,
    field: str | None = None,
    old: str | None = None,
    new: str | None = None,
    inbox_id: int | None = None,
) -> dict[str, Any]:
    """One event as `add_events` takes it; a kind outside the enum fails here, not later."""
    return {
        "ticket_id": ticket_id,
        "kind": EventKind(kind).value,
        "field": field,
        "old": old,
        "new": new,
        "actor": actor,
        "inbox_id": inbox_id,
        "created_at": utcnow(),
    }


def add_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Several events (`event_row`s) in one statement, in their order: a mail's events are written
    together (an executemany; on PostgreSQL psycopg sends them in one pipeline, not a round trip
    each)."""
    run_many(session, _INSERT_EVENT, rows)


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
    # ticketgate's own notifications too: a reply (or out-of-office) to one names its Message-ID.
    outbound = session.execute(
        select(OutboxRow.message_id, OutboxRow.ticket_id).where(
            OutboxRow.message_id.in_(wanted), OutboxRow.ticket_id.is_not(None)
        )
    ).all()
    for row in outbound:
        by_id.setdefault(row.message_id, row.ticket_id)
    for mid in reversed(wanted):
        if mid in by_id:
            return session.get(Ticket, by_id[mid])
    return None


def queue(session: Session, *, status: str | None = None) -> Sequence[Ticket]:
    """Tickets in queue order: priority (Urgent first), tier (Enterprise first), age (oldest first)."""
    query = (
        select(Ticket)
        .options(selectinload(Ticket.screenshots), selectinload(Ticket.attachments))
        .options(selectinload(Ticket.rejected_attachments), selectinload(Ticket.merged_from))
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
            selectinload(Ticket.participants),
            selectinload(Ticket.merged_from).selectinload(Ticket.messages),
        )
    )


# --- threading and the lifecycle ---------------------------------------------------------------


# Asked of every mail that names earlier ones: built once (an IN list of any length is one
# statement to SQLAlchemy's cache when its values are bound as one expanding parameter).
_OUTBOUND_TICKETS = select(OutboxRow.__table__.c.message_id, OutboxRow.__table__.c.ticket_id).where(
    OutboxRow.__table__.c.message_id.in_(bindparam("wanted", expanding=True)),
    OutboxRow.__table__.c.ticket_id.is_not(None),
)
_INBOUND_TICKETS = select(Message.__table__.c.message_id, Message.__table__.c.ticket_id).where(
    Message.__table__.c.message_id.in_(bindparam("wanted", expanding=True)),
    Message.__table__.c.ticket_id.is_not(None),
)


def ticket_for_any_message_ids(session: Session, message_ids: Sequence[str]) -> Ticket | None:
    """The ticket of the last of `message_ids` that is stored: an inbound message or a notification."""
    wanted = [mid for mid in message_ids if mid]
    if not wanted:
        return None
    by_id: dict[str, int] = {}
    for query in (_OUTBOUND_TICKETS, _INBOUND_TICKETS):
        for message_id, ticket_id in execute(session, query, {"wanted": wanted}):
            if message_id is not None and ticket_id is not None:
                by_id[message_id] = ticket_id
    for mid in reversed(wanted):
        if mid in by_id:
            return session.get(Ticket, by_id[mid])
    return None


def ticket_participants(session: Session, ticket_id: int) -> set[str]:
    """Everyone on a ticket, lower case: the requester, the assignee, its participants (SPEC §13:
    copied by the requester or staff, never by a stranger's own mail), and every author of a mail
    that joined it by a trusted way (a reply address or a stored Message-ID)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return set()
    found = {ticket.requester_address.lower()}
    if ticket.assignee:
        found.add(ticket.assignee.lower())
    found.update(session.scalars(select(Participant.address).where(Participant.ticket_id == ticket_id)))
    found.update(
        author.lower()
        for author in session.scalars(
            select(Message.author_address).where(Message.ticket_id == ticket_id, Message.kind == "mail")
        )
    )
    return found


def resolved_since(session: Session, ticket_id: int) -> datetime | None:
    """When the ticket last became Resolved, from its events."""
    return session.scalar(
        select(func.max(Event.created_at)).where(
            Event.ticket_id == ticket_id, Event.field == "status", Event.new == Status.RESOLVED.value
        )
    )


def tickets_due_for_auto_close(session: Session, *, quiet_since: datetime) -> list[Ticket]:
    """Resolved tickets with neither a move to Resolved nor a mail written since `quiet_since`
    (auto-replies do not count: an out-of-office is not an answer)."""
    resolved_at = (
        select(Event.ticket_id, func.max(Event.created_at).label("at"))
        .where(Event.field == "status", Event.new == Status.RESOLVED.value)
        .group_by(Event.ticket_id)
        .subquery()
    )
    last_mail = (
        select(Message.ticket_id, func.max(Message.created_at).label("at"))
        .where(Message.kind == "mail", Message.ticket_id.is_not(None))
        .group_by(Message.ticket_id)
        .subquery()
    )
    query = (
        select(Ticket)
        .join(resolved_at, resolved_at.c.ticket_id == Ticket.id)
        .outerjoin(last_mail, last_mail.c.ticket_id == Ticket.id)
        .where(
            Ticket.status == Status.RESOLVED.value,
            resolved_at.c.at <= quiet_since,
            (last_mail.c.at.is_(None)) | (last_mail.c.at <= quiet_since),
        )
        .order_by(Ticket.id)
        # A reply being processed meanwhile holds the row; wait for it rather than lose its change.
        .with_for_update(of=Ticket)
    )
    return list(session.scalars(query))


def update_ticket(
    ticket: Ticket,
    *,
    status: Status,
    priority: Priority,
    category: str,
    assignee: str | None,
    now: datetime,
) -> None:
    """Write a ticket's changeable fields, keeping the queue rank in step with the priority."""
    ticket.status = status.value
    ticket.priority = priority.value
    ticket.priority_rank = priority.rank
    ticket.category = category
    ticket.assignee = assignee[:320] if assignee else None
    ticket.updated_at = now


LOGO_MAX_SIDE = 400  # a signature logo is small; a real screenshot sent twice is not taken for one


# Asked of every mail with an attachment: built once, run on the DB-API cursor.
_REPEATED_SMALL_IMAGES = Direct(
    select(Screenshot.sha256)
    .join(Message, Message.id == Screenshot.message_db_id)
    .where(
        func.lower(Message.author_address) == bindparam("address"),
        Screenshot.width <= LOGO_MAX_SIDE,
        Screenshot.height <= LOGO_MAX_SIDE,
    )
    .distinct()
)


def repeated_small_images(session: Session, author_address: str) -> frozenset[str]:
    """Hashes of small images this sender's earlier mails carried: sent again, they are a logo."""
    address = author_address.strip().lower()
    return frozenset(run(session, _REPEATED_SMALL_IMAGES, {"address": address}).scalars())
