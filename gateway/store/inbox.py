"""The durable inbound queue: mail is committed here before any intake acknowledges it.

Intake only ever calls `InboxStore.add` / `add_many`; the processor claims, finishes, retries or
quarantines rows. Claims are leases: a worker that dies leaves its rows to be claimed again once
the lease runs out, so a crash between commit and processing loses nothing. A claim made by a
`serve` node also names the node: when its heartbeat stops (gateway/store/nodes.py), the claim is
taken over at once rather than when the lease runs out. Finishing, retrying and quarantining
only touch a row the worker still holds, so a claim taken over can never be finished twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Update,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain import Envelope
from gateway.store.claims import take_picked
from gateway.store.db import connection_of_work, is_sqlite, make_session_factory, unit_of_work
from gateway.store.direct import Direct, run_many, run_on
from gateway.store.models import InboxItem, utcnow
from gateway.store.nodes import DEAD_AFTER, orphaned_since, require_live
from gateway.store.rows import connection, execute
from gateway.store.write_probe import probe_write

log = logging.getLogger(__name__)

PENDING = "pending"
PROCESSING = "processing"
DONE = "done"
QUARANTINED = "quarantined"

DEFAULT_LEASE = timedelta(minutes=5)


# One multi-row INSERT … RETURNING for a whole group commit (a Core statement: see
# gateway/store/tickets.py); ids come back in the order of the mails.
_INSERT_ROWS = insert(InboxItem.__table__).returning(InboxItem.__table__.c.id, sort_by_parameter_order=True)

_inbox = InboxItem.__table__
# The same for one mail (`ingest` of one file, an SMTP commit of one mail), on the DB-API cursor
# (gateway/store/direct.py): through `Connection.execute` the statement cost several times the insert.
_INSERT_ROW_DIRECT = Direct(insert(_inbox).returning(_inbox.c.id))
_MARK_INBOX_DONE = (
    update(_inbox)
    .where(_inbox.c.id == bindparam("row_id"))
    .values(  # bound names differ from the columns': SQLAlchemy reserves those for itself
        state=DONE,
        outcome=bindparam("new_outcome"),
        ticket_id=bindparam("new_ticket_id"),
        message_id=bindparam("new_message_id"),
        lease_until=None,
        error=bindparam("note"),
        error_detail=None,
        processed_at=bindparam("now"),
    )
)
# The same, only while the worker still holds the claim (a claim taken over is finished once).
_MARK_HELD_INBOX_DONE = _MARK_INBOX_DONE.where(
    _inbox.c.state == PROCESSING, _inbox.c.claimed_by == bindparam("worker")
)
# Every mail ends with one of these: run on the DB-API cursor (gateway/store/direct.py).
_MARK_HELD_DONE_DIRECT = Direct(_MARK_HELD_INBOX_DONE)


def add_rows(session: Session, mails: Sequence[tuple[bytes, Envelope]]) -> list[int]:
    """Insert mails as pending inbox rows in the caller's transaction (IMAP commits its checkpoint
    in the same one); returns their ids, in the order of `mails`."""
    if not mails:
        return []
    return _insert(connection(session), _pending(mails))


def _pending(mails: Sequence[tuple[bytes, Envelope]]) -> list[dict[str, object]]:
    now = utcnow()
    return [{**_row(raw, envelope, now), "state": PENDING, "attempts": 0} for raw, envelope in mails]


def _insert(conn: Connection, rows: list[dict[str, object]]) -> list[int]:
    """Insert inbox rows (all with the same keys) in the transaction of `conn`; their ids, in order."""
    if len(rows) == 1:
        return [run_on(conn, _INSERT_ROW_DIRECT, rows[0]).inserted_id]
    return list(conn.execute(_INSERT_ROWS, rows).scalars())


def _row(raw: bytes, envelope: Envelope, now: datetime) -> dict[str, object]:
    """The columns every new inbox row gets from its mail."""
    return {
        "received_at": now,
        "source": envelope.source,
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "raw": raw,
        "size": len(raw),
        "next_attempt_at": now,
    }


@dataclass(frozen=True)
class ClaimedItem:
    """An inbox row claimed for processing: everything the pipeline needs, detached from the session."""

    id: int
    raw: bytes
    envelope: Envelope
    attempts: int
    received_at: datetime
    # `inbox release`: the spam verdict, the flood limit and a rule's drop do not apply.
    released: bool = False


@dataclass(frozen=True)
class InboxSummary:
    id: int
    received_at: datetime
    source: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    size: int
    state: str
    attempts: int
    message_id: str | None
    outcome: str | None
    ticket_id: int | None
    error: str | None
    error_detail: str | None


@dataclass(frozen=True)
class _ClaimStatements:
    pick_due: Select[tuple[int]]  # the due rows, oldest first, up to :limit
    pick_ids: Select[tuple[int]]  # those of :wanted that are claimable
    take: Update  # claim :candidates that are still claimable; RETURNING what the pipeline needs


@cache
def _claim_statements(for_node: bool, skip_locked: bool) -> _ClaimStatements:
    """The claim's statements, built once per kind of claimer (a `serve` node, which never takes
    over its own claims, or not) and database (PostgreSQL locks the candidates, skipping those
    another node holds): building them per call, with the node condition, cost the claim
    several times the database's work. Bound parameters: `claim_now`, `beat_since` (a node that
    has not beaten since is dead), `me` (for a node)."""
    now = bindparam("claim_now")
    me = bindparam("me") if for_node else None
    claimable = or_(
        (_inbox.c.state == PENDING) & (_inbox.c.next_attempt_at <= now),
        (_inbox.c.state == PROCESSING)
        & or_(
            _inbox.c.lease_until < now,
            orphaned_since(_inbox.c.claimed_node, bindparam("beat_since"), me=me),
        ),
    )
    pick_due = select(_inbox.c.id).where(claimable).order_by(_inbox.c.id).limit(bindparam("limit"))
    pick_ids = select(_inbox.c.id).where(_inbox.c.id.in_(bindparam("wanted", expanding=True)), claimable)
    if skip_locked:
        pick_due = pick_due.with_for_update(skip_locked=True)
        pick_ids = pick_ids.with_for_update(skip_locked=True)
    take = (
        update(_inbox)
        .where(_inbox.c.id.in_(bindparam("candidates", expanding=True)), claimable)
        .values(  # bound names differ from the columns': SQLAlchemy reserves those for itself
            state=PROCESSING,
            claimed_by=bindparam("worker"),
            claimed_node=bindparam("node"),
            lease_until=bindparam("until"),
            attempts=_inbox.c.attempts + 1,
        )
        .returning(
            _inbox.c.id,
            _inbox.c.raw,
            _inbox.c.mail_from,
            _inbox.c.rcpt_tos,
            _inbox.c.source,
            _inbox.c.attempts,
            _inbox.c.received_at,
            _inbox.c.released_at,
        )
    )
    return _ClaimStatements(pick_due, pick_ids, take)


class ClaimLostError(Exception):
    """The row is no longer this worker's: its claim was taken over (its node seemed dead, or the
    lease ran out) and another worker owns the result."""


def held_by(worker: str) -> ColumnElement[bool]:
    """SQL: the inbox row is still claimed by `worker` (finishing it is this worker's to do)."""
    return (InboxItem.state == PROCESSING) & (InboxItem.claimed_by == worker)


class InboxStore:
    """Access to the inbox table; every method is its own transaction.

    `node_id` is the `nodes` row of the `serve` this store works for (None for `ingest` and the
    other commands): claims record it.
    """

    def __init__(self, engine: Engine, *, node_id: int | None = None) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.node_id = node_id

    # --- intake -------------------------------------------------------------------------------

    def add(self, raw: bytes, envelope: Envelope) -> int:
        """Commit one mail; returns its inbox id. Raises TransientError when it could not be stored."""
        return self.add_many([(raw, envelope)])[0]

    def add_many(self, mails: Sequence[tuple[bytes, Envelope]]) -> list[int]:
        """Commit several mails in one transaction (one fsync): all are stored, or none."""
        if not mails:
            return []
        with connection_of_work(self.engine) as conn:  # no session: the insert is all there is
            return _insert(conn, _pending(mails))

    def add_claimed(
        self, mails: Sequence[tuple[bytes, Envelope]], worker: str, *, lease: timedelta = DEFAULT_LEASE
    ) -> list[ClaimedItem]:
        """Commit several mails in one transaction, each already claimed by `worker` (its first
        attempt counted), as `claim` would leave it: for `ingest`, which processes at once what it
        stored, so storing and claiming are one transaction (one commit) instead of two.

        A process killed after this commit leaves its mail claimed: it is taken up once the lease
        runs out (by `serve`, `process` or the next `ingest`), as a mail whose processing was cut
        short always was; never lost, and finished once (`held_by`). What is stored is the same
        either way, so the 0 an MTA is told still means "stored durably"."""
        if not mails:
            return []
        now = utcnow()
        claim = {
            "state": PROCESSING,
            "attempts": 1,
            "claimed_by": worker,
            "claimed_node": self.node_id,
            "lease_until": now + lease,
        }
        rows = [{**_row(raw, envelope, now), **claim} for raw, envelope in mails]
        with connection_of_work(self.engine) as conn:  # no session: the insert is all there is
            ids = _insert(conn, rows)
        return [
            ClaimedItem(id=item_id, raw=raw, envelope=envelope, attempts=1, received_at=now)
            for item_id, (raw, envelope) in zip(ids, mails, strict=True)
        ]

    def add_taken(self, take: Callable[[], Sequence[tuple[bytes, Envelope]]]) -> list[int]:
        """Commit, in one transaction, the mails `take()` gives once the transaction has begun: on
        SQLite once it holds the write lock, so the group-commit writer can take every mail that
        arrived while it waited for the lock into this commit instead of the next one."""
        with unit_of_work(self.sessions) as session:
            session.connection()  # BEGIN (IMMEDIATE on SQLite: the write lock is this one's now)
            return add_rows(session, take())

    def probe_write(self) -> None:
        """A write that leaves nothing behind (gateway/store/write_probe.py): TransientError when
        the database cannot take one now."""
        probe_write(self.sessions)

    # --- processing ---------------------------------------------------------------------------

    def claim(
        self,
        worker: str,
        *,
        limit: int = 10,
        ids: Sequence[int] | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> list[ClaimedItem]:
        """Claim up to `limit` due rows (or just `ids`, when given) for `worker`.

        On PostgreSQL the candidate rows are locked with SKIP LOCKED, so nodes never wait on each
        other; on SQLite the write lock serialises claims. The conditional UPDATE is what makes
        a claim exclusive on both. A store working for a node (`node_id`) raises OwnHeartbeatStale
        and claims nothing while that node's own heartbeat looks dead to the others, and never
        takes over that node's own claims.
        """
        now = utcnow()
        statements = _claim_statements(self.node_id is not None, not is_sqlite(self.engine))
        params: dict[str, object] = {"claim_now": now, "beat_since": now - DEAD_AFTER}
        if self.node_id is not None:
            params["me"] = self.node_id
        with unit_of_work(self.sessions) as session:
            require_live(session, self.node_id, now)
            if ids is not None:
                found = execute(session, statements.pick_ids, {**params, "wanted": list(ids)})
            else:
                found = execute(session, statements.pick_due, {**params, "limit": limit})
            candidates = list(found.scalars())
            if not candidates:
                return []
            # One UPDATE for all candidates; a row claimed meanwhile fails `claimable` and is left
            # out. RETURNING hands back what the pipeline needs without another read of the rows.
            taken = take_picked(
                session, statements.take, params, candidates=candidates, worker=worker, node=self.node_id,
                until=now + lease,
            )  # fmt: skip
            return [
                ClaimedItem(
                    id=row.id,
                    raw=row.raw,
                    envelope=Envelope(
                        mail_from=row.mail_from, rcpt_tos=tuple(row.rcpt_tos), source=row.source
                    ),
                    attempts=row.attempts,
                    received_at=row.received_at,
                    released=row.released_at is not None,
                )
                for row in taken
            ]

    def retry_later(self, item_id: int, *, delay: timedelta, error: str, worker: str | None = None) -> None:
        """Give a claimed row back after a transient fault, to be tried again after `delay`
        (only while `worker`, when named, still holds it)."""
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(InboxItem)
                .where(InboxItem.id == item_id, *_still_held(worker))
                .values(
                    state=PENDING,
                    next_attempt_at=utcnow() + delay,
                    lease_until=None,
                    claimed_by=None,
                    claimed_node=None,
                    error=error,
                )
            )

    def give_back_all(self, worker: str) -> int:
        """Every row `worker` still holds goes back to pending, due at once, its claim's attempt not
        counted: what a claim or batch whose transaction failed may have left claimed (a COMMIT can
        happen with its answer lost on the way back), so it waits out no lease. Only for a moment
        when the worker holds no mail in hand. Returns how many rows it gave back."""
        with unit_of_work(self.sessions) as session:
            result = session.execute(
                update(InboxItem)
                .where(held_by(worker))
                .values(
                    state=PENDING,
                    next_attempt_at=utcnow(),
                    lease_until=None,
                    claimed_by=None,
                    claimed_node=None,
                    attempts=InboxItem.attempts - 1,
                )
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def quarantine(
        self, item_id: int, *, reason: str, detail: str | None = None, worker: str | None = None
    ) -> None:
        """Park a row that cannot be processed, with its reason (and traceback) for staff (only
        while `worker`, when named, still holds it)."""
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(InboxItem)
                .where(InboxItem.id == item_id, *_still_held(worker))
                .values(
                    state=QUARANTINED,
                    outcome="quarantine",
                    error=reason,
                    error_detail=detail,
                    lease_until=None,
                    claimed_by=None,
                    claimed_node=None,
                    processed_at=utcnow(),
                )
            )

    # --- operators ----------------------------------------------------------------------------

    def summaries(self, *, state: str | None = None) -> list[InboxSummary]:
        with unit_of_work(self.sessions) as session:
            query = select(InboxItem).order_by(InboxItem.id)
            if state is not None:
                query = query.where(InboxItem.state == state)
            return [_summary(row) for row in session.scalars(query)]

    def get(self, item_id: int) -> tuple[InboxSummary, bytes] | None:
        with unit_of_work(self.sessions) as session:
            row = session.get(InboxItem, item_id)
            return None if row is None else (_summary(row), row.raw)

    def requeue_quarantined(self, ids: Sequence[int] | None = None) -> list[int]:
        """Put quarantined rows (all, or `ids`) back in the queue; returns the ids requeued."""
        with unit_of_work(self.sessions) as session:
            query = select(InboxItem.id).where(InboxItem.state == QUARANTINED)
            if ids is not None:
                query = query.where(InboxItem.id.in_(list(ids)))
            found = list(session.scalars(query))
            if found:
                session.execute(
                    update(InboxItem)
                    .where(InboxItem.id.in_(found))
                    .values(
                        state=PENDING,
                        outcome=None,
                        attempts=0,
                        next_attempt_at=utcnow(),
                        processed_at=None,
                    )
                )
            return found

    def pending_count(self) -> int:
        with unit_of_work(self.sessions) as session:
            count = session.scalar(
                select(func.count()).select_from(InboxItem).where(InboxItem.state.in_([PENDING, PROCESSING]))
            )
            return int(count or 0)

    def due_now(self, *, limit: int | None = None, exclude: Sequence[int] = ()) -> list[int]:
        """Every row left pending (those waiting out a back-off made due at once) and every claim
        whose lease ran out, oldest first, up to `limit`, but not `exclude`; their ids, to claim.

        For the pipe-side commands (`ingest`, `process`): without a daemon nothing else takes them
        up, so the next run is their retry; `processing.max_attempts` still bounds the tries.
        """
        now = utcnow()
        pick, make_due = _due_now_statements(limit is not None, bool(exclude))
        params: dict[str, object] = {"due_now": now}
        if limit is not None:
            params["limit"] = limit
        if exclude:
            params["excluded"] = list(exclude)
        with unit_of_work(self.sessions) as session:
            found = list(execute(session, pick, params).scalars())
            if found:
                execute(session, make_due, {"due_now": now, "found": found})
            return found


@cache
def _due_now_statements(limited: bool, excluding: bool) -> tuple[Select[tuple[int]], Update]:
    """`due_now`'s statements, built once (every `ingest` run asks, most often finding nothing:
    built per call they cost ~2.2 M instructions, several times the transaction). Bound parameters:
    `due_now`, `limit`, `excluded`; the update's `found`."""
    now = bindparam("due_now")
    left = or_(_inbox.c.state == PENDING, (_inbox.c.state == PROCESSING) & (_inbox.c.lease_until < now))
    pick = select(_inbox.c.id).where(left).order_by(_inbox.c.id)
    if limited:
        pick = pick.limit(bindparam("limit"))
    if excluding:
        pick = pick.where(_inbox.c.id.not_in(bindparam("excluded", expanding=True)))
    make_due = (
        update(_inbox)
        .where(
            _inbox.c.id.in_(bindparam("found", expanding=True)),
            _inbox.c.state == PENDING,
            _inbox.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return pick, make_due


def _still_held(worker: str | None) -> list[ColumnElement[bool]]:
    return [] if worker is None else [held_by(worker)]


def _summary(row: InboxItem) -> InboxSummary:
    return InboxSummary(
        id=row.id,
        received_at=row.received_at,
        source=row.source,
        mail_from=row.mail_from,
        rcpt_tos=tuple(row.rcpt_tos),
        size=row.size,
        state=row.state,
        attempts=row.attempts,
        message_id=row.message_id,
        outcome=row.outcome,
        ticket_id=row.ticket_id,
        error=row.error,
        error_detail=row.error_detail,
    )


def clip_message_id(message_id: str | None) -> str | None:
    """A Message-ID as its columns hold it (998 characters, the longest line RFC 5322 allows)."""
    return message_id[:998] if message_id else None


@dataclass(frozen=True)
class InboxOutcome:
    """What a processed mail's inbox row records."""

    inbox_id: int
    outcome: str
    ticket_id: int | None
    message_id: str | None
    note: str | None = None

    def params(self) -> dict[str, object]:
        return {
            "row_id": self.inbox_id,
            "new_outcome": self.outcome,
            "new_ticket_id": self.ticket_id,
            "new_message_id": clip_message_id(self.message_id),
            "note": self.note,
            "now": utcnow(),
        }


def mark_held_inbox_done(session: Session, outcomes: Sequence[InboxOutcome], *, worker: str) -> None:
    """Record the outcomes of several mails `worker` holds, in one executemany (one round trip on
    PostgreSQL instead of one per mail); `ClaimLostError` if any of them is no longer claimed by
    it (the caller's transaction must then roll back; which one is not said)."""
    rows = [{**outcome.params(), "worker": worker} for outcome in outcomes]
    if run_many(session, _MARK_HELD_DONE_DIRECT, rows) != len(rows):
        raise ClaimLostError(f"an inbox row of {len(rows)} is no longer claimed by {worker}")
