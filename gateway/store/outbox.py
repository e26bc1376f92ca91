"""Outbox queries: queue notifications, claim due ones (SKIP LOCKED on PostgreSQL), record outcomes,
and the addresses that bounced for good. Functions take the caller's session (its transaction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, Update, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from gateway.store.claims import take_picked
from gateway.store.direct import Direct, run, run_many
from gateway.store.models import InboxItem, Message, OutboxRow, UndeliverableAddress, as_utc, utcnow
from gateway.store.nodes import DEAD_AFTER, orphaned_since, require_live
from gateway.store.outbox_wake import queued
from gateway.store.rows import attach_inserted, built, execute, in_transaction

QUEUED = "queued"
RETRY = "retry"
SENT = "sent"
FAILED = "failed"
DEAD = "dead"
BOUNCED = "bounced"
STATUSES = (QUEUED, RETRY, SENT, FAILED, DEAD, BOUNCED)
DUE_STATUSES = (QUEUED, RETRY)
# Statuses `outbox retry` puts back in the queue when no ids are named.
RETRYABLE = (FAILED, DEAD, RETRY)

# Asked for every new ticket: Core statements built once (see gateway/store/tickets.py for why).
_outbox = OutboxRow.__table__
# Run on the DB-API cursor (gateway/store/direct.py), as every statement built once here.
_ACKS_SINCE = Direct(
    select(func.count())
    .select_from(_outbox)
    .where(
        func.lower(_outbox.c.to_address) == bindparam("address"),
        _outbox.c.template == bindparam("template"),
        _outbox.c.created_at >= bindparam("since"),
    )
)
_INSERT_ROW = Direct(insert(_outbox))
_undeliverable = UndeliverableAddress.__table__
_CLEAR_UNDELIVERABLE = Direct(delete(_undeliverable).where(_undeliverable.c.address == bindparam("address")))


def draft(
    session: Session,
    *,
    ticket_id: int | None,
    template: str,
    to_address: str,
    deadline: datetime,
    inbox_id: int | None,
    context: dict[str, Any],
) -> OutboxRow:
    """A new queued row with its id already taken, not yet stored: the caller fills in what needs
    the id (its Message-ID and VERP address) and the rendered mail, then `insert`s it, so each
    notification costs one INSERT, not an INSERT and an UPDATE of the same row."""
    now = utcnow()
    values = {
        "id": next_id(session),
        "ticket_id": ticket_id,
        "template": template,
        "to_address": to_address[:320],
        "envelope_from": "",
        "message_id": "",
        "subject": "",
        "raw": b"",
        "context": context,
        "status": QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "deadline": deadline,
        "claimed_by": None,
        "claimed_node": None,
        "last_error": None,
        "inbox_id": inbox_id,
        "created_at": now,
        "sent_at": None,
    }
    return built(OutboxRow, values)


def insert(session: Session, row: OutboxRow, *, keep: bool = True) -> OutboxRow:
    """Store a `draft` (every column as it stands on the object) and, with `keep`, attach it to the
    session as if loaded, so later changes to it are ordinary updates. Without (the planner, which
    hands rows back only to be read), a change to the object is not written: load the row again;
    and in a transaction that holds rows back (`hold_inserts`), the row is written with the others
    by `write_held`."""
    values = {column.key: getattr(row, column.key) for column in _outbox.columns}
    held: list[dict[str, Any]] | None = None if keep else in_transaction(session).get(_HELD_ROWS_KEY)
    if held is not None:
        held.append(values)
    else:
        run(session, _INSERT_ROW, values)
        if keep:
            attach_inserted(session, row)
    queued(session)
    return row


def hold_inserts(session: Session) -> None:
    """From now on in this transaction, rows `insert`ed without `keep` are written together by
    `write_held` (for a batch of mails: one executemany at its end instead of an INSERT per
    notification, two per new ticket). Only for a transaction that is rolled back whole if any of
    its work fails (the processor's batch without savepoints), which must call `write_held` before
    it commits.

    Meanwhile `acks_since` counts the rows held, so the per-sender limits hold within the batch.
    Nothing else of the transaction looks for them: they are notifications not yet sent, so no
    bounce (`by_message_id`) and no reply (`tickets.ticket_for_any_message_ids`) can be about
    them yet."""
    in_transaction(session).setdefault(_HELD_ROWS_KEY, [])


def write_held(session: Session) -> None:
    """Write the rows held back since `hold_inserts`; later ones are written at once again."""
    run_many(session, _INSERT_ROW, in_transaction(session).pop(_HELD_ROWS_KEY, []))


_HELD_ROWS_KEY = "outbox.held_rows"  # in_transaction: rows inserted but not yet written


def add(
    session: Session,
    *,
    ticket_id: int | None,
    template: str,
    to_address: str,
    deadline: datetime,
    inbox_id: int | None,
    context: dict[str, Any],
) -> OutboxRow:
    """A new queued row, stored at once (for callers that fill in the rest afterwards: one UPDATE
    when the session flushes)."""
    row = draft(
        session, ticket_id=ticket_id, template=template, to_address=to_address, deadline=deadline,
        inbox_id=inbox_id, context=context,
    )  # fmt: skip
    return insert(session, row)


def next_id(session: Session) -> int:
    """The id the next outbox row gets, taken before it is inserted (its Message-ID and VERP
    address carry it).

    PostgreSQL: from the column's own sequence, so nodes writing at once never share one. A
    transaction takes them in blocks (`SELECT nextval(…) FROM generate_series`), 8 at first and
    twice as many each time it runs out, up to 64, instead of one round trip per row: a batch of
    16 new tickets queues ~30 rows, which took 30 statements and now takes 3. The ids a
    transaction took and did not use are never used (a sequence does not give a number twice):
    a gap, as a rolled-back insert leaves one anyway. The column is a 32-bit integer: with at most
    63 ids left unused per transaction, that is still 33 million transactions.

    SQLite: one past the largest, which is what SQLite itself gives a row with no id (a table
    without AUTOINCREMENT); safe because every write transaction here holds the database's write
    lock from its BEGIN IMMEDIATE (gateway/store/db.py), so no other writer can take the same id
    meanwhile. For the same reason the largest is asked once per transaction (a batch of mails
    queues a row or more each), and the ids after it are counted here: every outbox row is made by
    `draft`, so nothing else in the transaction takes one.

    On both, a savepoint rolled back after taking ids leaves a gap in them, never a duplicate."""
    kept = in_transaction(session)
    if session.get_bind().dialect.name == "postgresql":
        taken: list[int] | None = kept.get(_TAKEN_IDS_KEY)
        if not taken:
            block = kept.get(_BLOCK_KEY, _FIRST_BLOCK)
            kept[_BLOCK_KEY] = min(2 * block, _LARGEST_BLOCK)
            # Smallest last: popped in the order the sequence gave them.
            taken = kept[_TAKEN_IDS_KEY] = sorted(
                run(session, _NEXT_IDS_POSTGRES, {"count": block}).scalars(), reverse=True
            )
        return taken.pop()
    following: int | None = kept.get(_NEXT_ID_KEY)
    if following is None:
        following = int(run(session, _NEXT_ID_SQLITE).scalar())
    kept[_NEXT_ID_KEY] = following + 1
    return following


_NEXT_IDS_POSTGRES = Direct(
    select(func.nextval(func.pg_get_serial_sequence(_outbox.name, _outbox.c.id.name))).select_from(
        func.generate_series(1, bindparam("count"))
    )
)
_NEXT_ID_SQLITE = Direct(select(func.coalesce(func.max(_outbox.c.id), 0) + 1))
_NEXT_ID_KEY = "outbox.next_id"
_TAKEN_IDS_KEY = "outbox.taken_ids"  # PostgreSQL: ids taken from the sequence, not used yet
_BLOCK_KEY = "outbox.id_block"  # PostgreSQL: how many ids the next nextval statement takes
_FIRST_BLOCK = 8
_LARGEST_BLOCK = 64


@dataclass(frozen=True)
class ClaimedNotification:
    """An outbox row claimed for one delivery attempt: what the relay needs, detached from the session."""

    id: int
    attempts: int  # including this one
    deadline: datetime
    envelope_from: str
    to_address: str
    raw: bytes
    template: str = ""


def claim_due(
    session: Session,
    *,
    worker: str,
    lease: timedelta,
    now: datetime,
    limit: int,
    node_id: int | None = None,
    take_over: bool = True,
) -> list[ClaimedNotification]:
    """Up to `limit` due rows, oldest first, pushed `lease` into the future so no other sender takes
    them meanwhile (one transaction for several notifications: each costs a commit otherwise).

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several nodes claim side by side; SQLite
    transactions here begin IMMEDIATE, which serialises writers anyway; the conditional UPDATE is
    what makes a claim exclusive on both. A sender that dies holding rows leaves them due again
    when the lease ends (at-least-once delivery), or, when the claim names its node (`node_id`),
    as soon as that node's heartbeat stops.

    With `node_id`: raises OwnHeartbeatStale (and claims nothing) while that node's own heartbeat
    looks dead to the others, and never takes over that node's own claims. `take_over=False`
    leaves every claim that names a node alone, dead or not: a sender that has just found the
    database again lets the other nodes beat (and record what they sent meanwhile) first.
    """
    require_live(session, node_id, now)
    statements = _claim_statements(
        node_id is not None, take_over, session.get_bind().dialect.name == "postgresql"
    )
    params: dict[str, object] = {"claim_now": now, "beat_since": now - DEAD_AFTER}
    if node_id is not None and take_over:
        params["me"] = node_id
    candidates = list(execute(session, statements.pick, {**params, "limit": limit}).scalars())
    if not candidates:
        return []
    taken = take_picked(
        session, statements.take, params, candidates=candidates, worker=worker[:128], node=node_id,
        until=now + lease,
    )  # fmt: skip
    return [ClaimedNotification(*row) for row in taken]


@dataclass(frozen=True)
class _ClaimStatements:
    pick: Select[tuple[int]]  # the due rows' ids, in the order they are sent, up to :limit
    take: Update  # claim :candidates still due; RETURNING what the sender needs


@cache
def _claim_statements(for_node: bool, take_over: bool, skip_locked: bool) -> _ClaimStatements:
    """`claim_due`'s statements, built once per kind of claimer and database (built per call, they
    cost the claim several times the database's work, as the inbox claim's did). Bound
    parameters: `claim_now`, `beat_since` (a node that has not beaten since is dead), `me`."""
    waiting = _outbox.c.next_attempt_at <= bindparam("claim_now")
    if take_over:
        me = bindparam("me") if for_node else None
        waiting = waiting | orphaned_since(_outbox.c.claimed_node, bindparam("beat_since"), me=me)
    else:
        waiting = waiting & _outbox.c.claimed_node.is_(None)
    due = _outbox.c.status.in_(DUE_STATUSES) & waiting
    # A due row that names a node is one a dead node had claimed: first, or a backlog of newer
    # mail would keep it waiting behind (its next attempt was pushed a lease ahead by that claim).
    pick = (
        select(_outbox.c.id)
        .where(due)
        .order_by(_outbox.c.claimed_node.is_(None), _outbox.c.next_attempt_at, _outbox.c.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    take = (
        update(_outbox)
        .where(_outbox.c.id.in_(bindparam("candidates", expanding=True)), due)
        .values(  # bound names differ from the columns': SQLAlchemy reserves those for itself
            attempts=_outbox.c.attempts + 1,
            claimed_by=bindparam("worker"),
            claimed_node=bindparam("node"),
            next_attempt_at=bindparam("until"),
        )
        .returning(
            _outbox.c.id,
            _outbox.c.attempts,
            _outbox.c.deadline,
            _outbox.c.envelope_from,
            _outbox.c.to_address,
            _outbox.c.raw,
            _outbox.c.template,
        )
    )
    return _ClaimStatements(pick, take)


def release_claims(session: Session, outbox_ids: Sequence[int], *, worker: str, now: datetime) -> None:
    """Give back claimed rows that were not tried (the relay went down first): due again at once,
    and the attempt they were charged for is not counted."""
    if not outbox_ids:
        return
    execute(
        session,
        update(_outbox)
        .where(_outbox.c.id.in_(list(outbox_ids)), _outbox.c.claimed_by == worker[:128])
        .values(attempts=_outbox.c.attempts - 1, claimed_by=None, claimed_node=None, next_attempt_at=now),
    )


def release_all_claims(session: Session, *, worker: str, now: datetime) -> int:
    """Give back every due row `worker` still holds, untried: what a claim whose transaction failed
    may have left (its COMMIT can have happened with the answer lost on the way back). Only for a
    moment when the worker holds no batch in flight and has recorded every outcome it knows.
    Returns how many rows it gave back."""
    result = execute(
        session,
        update(_outbox)
        .where(_outbox.c.claimed_by == worker[:128], _outbox.c.status.in_(DUE_STATUSES))
        .values(attempts=_outbox.c.attempts - 1, claimed_by=None, claimed_node=None, next_attempt_at=now),
    )
    return int(result.rowcount or 0)


_MARK_SENT = (
    update(_outbox)
    .where(_outbox.c.id == bindparam("row_id"))
    .values(status=SENT, sent_at=bindparam("now"), last_error=None, claimed_by=None, claimed_node=None)
)


def mark_sent_many(
    session: Session, rows: Sequence[tuple[int, datetime]], *, must_exist: bool = True
) -> None:
    """(outbox id, when sent) for each: one UPDATE statement, run for them all (every notification
    ends here, so no row and its rendered mail is loaded for it). `must_exist=False` for outcomes
    recorded late: a row erased meanwhile (`tickets erase`) has nothing left to record."""
    params = [{"row_id": outbox_id, "now": at} for outbox_id, at in rows]
    result = execute(session, _MARK_SENT, params)
    if must_exist and result.rowcount != len(params):
        raise NoResultFound(f"of outbox rows {[row_id for row_id, _ in rows]}, {result.rowcount} were found")


def mark_retry(session: Session, outbox_id: int, *, at: datetime, error: str) -> None:
    """Tried and refused for now (4xx, connection trouble): due again `at`, the claim given back."""
    execute(
        session,
        update(_outbox)
        .where(_outbox.c.id == outbox_id, _outbox.c.status != SENT)
        .values(status=RETRY, next_attempt_at=at, last_error=error, claimed_by=None, claimed_node=None),
    )


def mark_final(session: Session, outbox_id: int, *, status: str, error: str) -> None:
    """failed (a permanent refusal) or dead (past its deadline)."""
    execute(
        session,
        update(_outbox)
        .where(_outbox.c.id == outbox_id, _outbox.c.status != SENT)
        .values(status=status, last_error=error, claimed_by=None, claimed_node=None),
    )


def get(session: Session, outbox_id: int) -> OutboxRow | None:
    return session.get(OutboxRow, outbox_id)


def by_message_id(session: Session, message_id: str) -> OutboxRow | None:
    return session.scalar(select(OutboxRow).where(OutboxRow.message_id == message_id).limit(1))


def latest_sent_to(session: Session, address: str, *, since: datetime) -> OutboxRow | None:
    """The most recent notification sent to `address` (any case) since then, or None: what a bounce
    that names only its failed recipient is about."""
    query = (
        select(OutboxRow)
        .where(
            func.lower(OutboxRow.to_address) == address.strip().lower(),
            OutboxRow.created_at >= since,
            OutboxRow.sent_at.is_not(None),
        )
        .order_by(OutboxRow.sent_at.desc(), OutboxRow.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def for_ticket(session: Session, ticket_id: int) -> Sequence[OutboxRow]:
    return session.scalars(
        select(OutboxRow).where(OutboxRow.ticket_id == ticket_id).order_by(OutboxRow.id)
    ).all()


def listing(session: Session, *, status: str | None = None) -> Sequence[OutboxRow]:
    query = select(OutboxRow).order_by(OutboxRow.id)
    if status is not None:
        query = query.where(OutboxRow.status == status)
    return session.scalars(query).all()


def requeue(
    session: Session, ids: Sequence[int] | None, *, now: datetime, deadline: datetime
) -> list[OutboxRow]:
    """Put rows back in the queue with fresh attempts and deadline; sent rows are never resent."""
    query = select(OutboxRow).order_by(OutboxRow.id)
    if ids:
        query = query.where(OutboxRow.id.in_(ids), OutboxRow.status != SENT)
    else:
        query = query.where(OutboxRow.status.in_(RETRYABLE))
    rows = list(session.scalars(query).all())
    for row in rows:
        row.status = QUEUED
        row.attempts = 0
        row.next_attempt_at = now
        row.deadline = deadline
        row.claimed_by = None
        row.claimed_node = None
    if rows:
        queued(session)
    return rows


def acks_since(session: Session, address: str, *, template: str, since: datetime) -> int:
    """How many `template` rows went to `address` since then (the per-sender acknowledgement limit):
    the stored ones (as `know_recent` read them, if it did for this address and window) and the
    ones this transaction holds back (`hold_inserts`)."""
    key, since = address.lower(), as_utc(since)
    recent = in_transaction(session).get(_RECENT_KEY, {}).get(template)
    if recent is not None and key in recent.times and since >= recent.since:
        stored = sum(1 for created in recent.times[key] if created >= since)
    else:
        params = {"address": key, "template": template, "since": since}
        stored = int(run(session, _ACKS_SINCE, params).scalar() or 0)
    held: list[dict[str, Any]] = in_transaction(session).get(_HELD_ROWS_KEY, [])
    return stored + sum(
        1
        for row in held
        if row["template"] == template
        and row["to_address"].lower() == key
        and row["created_at"] >= since  # `draft`'s utcnow()
    )


def know_recent(session: Session, addresses: Iterable[str], *, template: str, since: datetime) -> None:
    """Read when `template` rows went to each of `addresses` since then, in one statement, and keep
    it for the rest of the transaction: `acks_since` then asks nothing for them (for a batch of
    mails: one statement instead of one per new ticket).

    Only where the caller already holds the per-sender locks of `addresses` (store/limits.py,
    `hold_senders`), so no other transaction queues such a row for them meanwhile, and only for a
    transaction rolled back whole if any of its work fails; the rows it queues itself are counted
    by `acks_since` as it holds them back (`hold_inserts`), which such a transaction does."""
    keys = sorted({address.lower() for address in addresses})
    if not keys:
        return
    lowered = func.lower(_outbox.c.to_address)
    query = select(lowered, _outbox.c.created_at).where(
        lowered.in_(keys), _outbox.c.template == template, _outbox.c.created_at >= since
    )
    times: dict[str, list[datetime]] = {key: [] for key in keys}
    for address, created in execute(session, query):
        times[address].append(created)  # UTC already (UTCDateTime); one of `keys` (the IN)
    in_transaction(session).setdefault(_RECENT_KEY, {})[template] = _Recent(as_utc(since), times)


@dataclass(frozen=True)
class _Recent:
    since: datetime  # the window `know_recent` read; a later start is within it
    times: dict[str, list[datetime]]  # address key -> when each row was queued


_RECENT_KEY = "outbox.recent"  # in_transaction: template -> _Recent


_UNDELIVERABLE_REASON = Direct(
    select(_undeliverable.c.reason).where(_undeliverable.c.address == bindparam("address"))
)


def undeliverable_key(address: str) -> str:
    """How an address is keyed among the undeliverable ones."""
    return address.strip().lower()


def know_undeliverable(session: Session, addresses: Iterable[str]) -> None:
    """Read the undeliverable marks of `addresses` in one statement and keep them for the rest of
    the transaction, so that `undeliverable_reason` and `clear_undeliverable` need no statement of
    their own for them (two per mail of a batch: the requester's mark cleared, staff's looked up).

    Only for a transaction that is rolled back whole if any of its work fails (the processor's
    batch without savepoints): a savepoint rolled back after a mark was cleared or set would leave
    what is kept here wrong. Marks that another transaction writes meanwhile are seen as they
    would be had this transaction asked at its start; the marks it writes itself are kept here too.
    """
    keys = {undeliverable_key(address) for address in addresses}
    known: dict[str, str | None] = dict.fromkeys(keys)
    if keys:
        query = select(_undeliverable.c.address, _undeliverable.c.reason).where(
            _undeliverable.c.address.in_(sorted(keys))
        )
        known.update({address: reason for address, reason in execute(session, query)})
    kept = in_transaction(session)
    kept[_MARKS_KEY] = {**kept.get(_MARKS_KEY, {}), **known}


def _known_marks(session: Session) -> dict[str, str | None] | None:
    """The marks `know_undeliverable` keeps for this transaction (None: it was not asked)."""
    return in_transaction(session).get(_MARKS_KEY)  # type: ignore[no-any-return]


def undeliverable_reason(session: Session, address: str) -> str | None:
    """Why `address` gets no mail (a permanent bounce), or None when it may be mailed."""
    key = undeliverable_key(address)
    known = _known_marks(session)
    if known is not None and key in known:
        return known[key]
    reason: str | None = run(session, _UNDELIVERABLE_REASON, {"address": key}).scalar()
    if known is not None:
        known[key] = reason
    return reason


def mark_undeliverable(session: Session, address: str, *, reason: str, inbox_id: int | None) -> None:
    key = address.strip().lower()[:320]
    found = session.get(UndeliverableAddress, key)
    if found is None:
        session.add(UndeliverableAddress(address=key, reason=reason, since=utcnow(), inbox_id=inbox_id))
    else:
        found.reason = reason
        found.inbox_id = inbox_id
    known = _known_marks(session)
    if known is not None:
        known[undeliverable_key(address)] = reason


def clear_undeliverable(session: Session, address: str) -> bool:
    """The address wrote to us again: it is deliverable from now on. True when it was marked."""
    key = undeliverable_key(address)
    known = _known_marks(session)
    if known is not None:
        if key in known and known[key] is None:
            return False  # known to have no mark: nothing to delete
        known[key] = None
    return run(session, _CLEAR_UNDELIVERABLE, {"address": key}).rowcount > 0


_MARKS_KEY = "outbox.undeliverable_marks"  # in_transaction: address key -> reason, None: no mark


_messages = Message.__table__
_THREAD_IDS = Direct(
    select(_messages.c.id, _messages.c.message_id)
    .where(_messages.c.ticket_id == bindparam("ticket_id"))
    .order_by(_messages.c.id)
)


def thread_message_ids(session: Session, ticket_id: int) -> list[tuple[int, str | None]]:
    """(row id, Message-ID) of a ticket's messages in order: what a notification threads on."""
    return [
        (row_id, message_id)
        for row_id, message_id in run(session, _THREAD_IDS, {"ticket_id": ticket_id}).rows
    ]


_FIRST_RECIPIENTS = (
    select(InboxItem.__table__.c.rcpt_tos)
    .join(_messages, _messages.c.inbox_id == InboxItem.__table__.c.id)
    .where(_messages.c.ticket_id == bindparam("ticket_id"))
    .order_by(_messages.c.id)
    .limit(1)
)


def first_recipients(session: Session, ticket_id: int) -> list[str]:
    """The envelope recipients (RCPT TO) of the mail that opened a ticket; [] when it had none
    (IMAP and pipe intake without `--recipient`)."""
    row = execute(session, _FIRST_RECIPIENTS, {"ticket_id": ticket_id}).first()
    return list(row.rcpt_tos or []) if row is not None else []


def ticket_messages(session: Session, ticket_id: int) -> Sequence[Message]:
    """A ticket's messages in order, read fresh (the planner runs right after they were added)."""
    return session.scalars(select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)).all()
