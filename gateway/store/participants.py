"""Reads and writes of a ticket's participants and merge links (SPEC §13), in a caller's transaction.

A participant is one row per ticket and lower-cased address: adding someone already there changes
nothing, so the same copy seen on every reply is not news each time.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from gateway.domain import OPEN_STATUSES, Address, Role
from gateway.store.direct import Direct, run
from gateway.store.models import Participant, Ticket, utcnow

MAX_MERGE_HOPS = 20  # a chain of merges is followed this far (merged tickets are Closed: no cycles)


def participants(session: Session, ticket_id: int) -> list[Participant]:
    """The ticket's participants, in the order they were added."""
    query = select(Participant).where(Participant.ticket_id == ticket_id).order_by(Participant.id)
    return list(session.scalars(query))


def participant_addresses(session: Session, ticket_id: int) -> set[str]:
    return {row.address for row in participants(session, ticket_id)}


def add_participants(
    session: Session, ticket_id: int, people: Iterable[Address], *, added_by: str, role: Role = Role.CC
) -> list[Address]:
    """Add whoever of `people` is not on the ticket yet; the ones added, as given. Nobody to add
    (most mails copy no one) asks nothing of the database."""
    people = list(people)
    if not people:
        return []
    known = participant_addresses(session, ticket_id)
    added: list[Address] = []
    for person in people:
        key = person.address.strip().lower()
        if not key or key in known:
            continue
        known.add(key)
        session.add(
            Participant(
                ticket_id=ticket_id,
                address=key[:320],
                name=person.name[:300],
                role=Role(role).value,
                added_by=added_by.lower()[:320],
                created_at=utcnow(),
            )
        )
        added.append(person)
    if added:
        session.flush()
    return added


def remove_participant(session: Session, ticket_id: int, address: str) -> bool:
    """Take `address` off the ticket; False when it was not on it."""
    result = session.execute(
        delete(Participant).where(
            Participant.ticket_id == ticket_id, Participant.address == address.strip().lower()
        )
    )
    return bool(getattr(result, "rowcount", 0))


def final_ticket(session: Session, ticket: Ticket) -> Ticket:
    """The ticket `ticket` now lives in: itself, or the end of its chain of merges."""
    seen = {ticket.id}
    for _ in range(MAX_MERGE_HOPS):
        if ticket.merged_into_id is None:
            return ticket
        target = session.get(Ticket, ticket.merged_into_id)
        if target is None or target.id in seen:
            return ticket
        seen.add(target.id)
        ticket = target
    return ticket


def merged_from(session: Session, ticket_id: int) -> list[Ticket]:
    """The tickets merged into this one (directly), oldest first."""
    return list(session.scalars(select(Ticket).where(Ticket.merged_into_id == ticket_id).order_by(Ticket.id)))


def other_open_ticket_ids(session: Session, requester: str, *, excluding: int) -> list[int]:
    """The ids of the requester's other open tickets (every status but Resolved and Closed), oldest
    first. Asked for every new ticket: a Core statement built once, ids only (no ORM objects)."""
    params = {"requester": requester.strip().lower(), "excluding": excluding}
    return run(session, _OTHER_OPEN, params).scalars()


_tickets = Ticket.__table__
_OTHER_OPEN = Direct(
    select(_tickets.c.id)
    .where(
        func.lower(_tickets.c.requester_address) == bindparam("requester"),
        _tickets.c.id != bindparam("excluding"),
        # One comparison each, not IN: an IN list is compiled per call (gateway/store/direct.py).
        or_(*(_tickets.c.status == status for status in OPEN_STATUSES)),
    )
    .order_by(_tickets.c.id)
)
