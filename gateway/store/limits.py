"""Counts the abuse limits read from the store (SPEC §11), the same on SQLite and PostgreSQL, and
the per-sender lock that makes counting and acting on the count one step.

They are counted from the tickets themselves rather than kept in a counter of their own, so a
limit holds across restarts and across nodes that share the database.

A limit is a count followed by a write (a ticket opened, an acknowledgement queued). Two processors
counting the same sender at once would each see the other's write missing and both go past the
limit: on PostgreSQL, with several worker processes or nodes, a burst of one sender's mail got ten
acknowledgements where the limit is five. `hold_senders` takes a transaction-level advisory lock per
sender address, so whoever counts a sender next waits for the transaction that counted it last to
end. On SQLite nothing is needed: a transaction holds the one write lock from its BEGIN IMMEDIATE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from gateway.store.models import Ticket
from gateway.store.rows import connection, execute, in_transaction

_HELD = "limits.held_senders"
# Taken in the order given (ascending keys), so two transactions never wait for each other in a cycle.
_LOCK_SENDERS = text("SELECT count(pg_advisory_xact_lock(key)) FROM unnest(:keys) AS key").bindparams(
    bindparam("keys", type_=ARRAY(BigInteger))
)


def sender_key(address: str) -> int:
    """A signed 64-bit advisory-lock key for a sender address (case-insensitive; stable across nodes
    and versions; prefixed so it is no other lock's key)."""
    digest = hashlib.blake2b(b"ticketgate sender\0" + address.strip().lower().encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def hold_senders(session: Session, addresses: Iterable[str]) -> None:
    """Until the session's transaction ends, no other transaction counts these senders (PostgreSQL;
    nothing on SQLite). Keys this transaction holds already are skipped, the others taken in
    ascending order: a processor takes its batch's senders this way before the first mail, so two
    batches never wait for each other in a cycle; a stage that counts another address (a form's
    visitor) takes that one when it counts."""
    if session.get_bind().dialect.name != "postgresql":
        return  # and SQLite's transaction is not begun any earlier than it would be
    held: set[int] = in_transaction(session).setdefault(_HELD, set())
    keys = sorted({sender_key(address) for address in addresses if address} - held)
    if keys:
        connection(session).execute(_LOCK_SENDERS, {"keys": keys})
        # A lock taken inside a savepoint goes when the savepoint is rolled back: remembered only
        # outside one (asking again for a lock the transaction holds is harmless).
        if not session.in_nested_transaction():
            held.update(keys)


_tickets = Ticket.__table__
# Uses ix_tickets_requester_lower_created (migration 0005).
_TICKETS_OPENED = (
    select(func.count())
    .select_from(_tickets)
    .where(
        func.lower(_tickets.c.requester_address) == bindparam("address"),
        _tickets.c.created_at > bindparam("since"),
        _tickets.c.created_at <= bindparam("until"),
    )
)


def tickets_opened_by(session: Session, address: str, *, since: datetime, until: datetime) -> int:
    """How many tickets `address` opened after `since` and up to `until` (compared case-insensitively)."""
    params = {"address": address.strip().lower(), "since": since, "until": until}
    return int(execute(session, _TICKETS_OPENED, params).scalar() or 0)
