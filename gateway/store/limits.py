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
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from gateway.store.models import Ticket, as_utc
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
_TICKET_TIMES = select(_tickets.c.created_at).where(
    func.lower(_tickets.c.requester_address) == bindparam("address"),
    _tickets.c.created_at > bindparam("since"),
    _tickets.c.created_at < bindparam("until"),
)


@dataclass(frozen=True)
class Opened:
    """What opening one more ticket at a time would add to: the most tickets a sender opened in any
    one window that holds that time; `later` when that window ends after it."""

    count: int
    later: bool

    def words(self) -> str:
        return "in an hour with a later mail of theirs" if self.later else "in the hour before this mail"


def tickets_opened_by(session: Session, address: str, *, at: datetime, window: timedelta) -> Opened:
    """The most tickets `address` (compared case-insensitively) opened in any `window`-long span
    ending at or after `at` that holds `at`, by their mail's time of receipt (a ticket's
    `created_at`).

    When mail is processed in the order it came, no ticket of the sender's is later than `at`, and
    this is the span before `at`, so the verdict does not depend on when the mail is processed.
    With several processors a later mail of the same sender can be processed first (one takes the
    first part of a burst, another the rest), and a count of the span before `at` alone would then
    let the earlier mails past the limit; counted over the later spans too, the limit holds (a
    run saw 31 tickets where it is 30), though the mail held may be another of the burst than the
    one that came last. One statement: the times of the sender's tickets in the two hours around
    `at` (at most about twice the limit: a sender over it opens no more)."""
    params = {"address": address.strip().lower(), "since": at - window, "until": at + window}
    times = sorted(execute(session, _TICKET_TIMES, params).scalars())  # UTC already (UTCDateTime)
    at = as_utc(at)
    before = bisect_right(times, at)  # the tickets up to `at`
    best = Opened(before, later=False)
    for end in range(before, len(times)):  # each later ticket ends a span that holds `at`
        count = end + 1 - bisect_right(times, times[end] - window)
        if count > best.count:
            best = Opened(count, later=True)
    return best
