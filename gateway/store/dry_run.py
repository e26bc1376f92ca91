"""What `ticketgate explain` needs from the store to run a mail through the stages and keep nothing:
a blob store whose writes stay in memory, and the few reads and writes of its rolled-back
transaction (the inbox row a file gets, its own earlier de-duplication record set aside, the
notifications the planner queued)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Insert, delete, event, func, select
from sqlalchemy.orm import Session

from gateway.domain import Envelope, EventKind
from gateway.store.blobs import BlobNotFoundError, BlobStore
from gateway.store.direct import forget_listeners
from gateway.store.inbox import add_rows
from gateway.store.models import Event, Message, OutboxRow, SeenMail
from gateway.store.rows import connection, execute

# The numbers people see: ticket references (SP-42) and inbox ids (`inbox list`).
_KEPT_NUMBERS = frozenset({"tickets", "inbox"})


class DryBlobStore:
    """A `BlobStore` over the real one whose writes stay in this object: a screenshot explain
    normalises is readable (the staff notification shows it) but never reaches the folder or the
    table, where a rolled-back transaction would not take it away again (a folder is no transaction)."""

    def __init__(self, real: BlobStore) -> None:
        self._real = real
        self._kept: dict[str, bytes] = {}

    def put(self, data: bytes, *, session: Session | None = None) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        self._kept[sha256] = data
        return sha256

    def get(self, sha256: str, *, session: Session | None = None) -> bytes:
        if sha256 in self._kept:
            return self._kept[sha256]
        return self._real.get(sha256, session=session)

    def exists(self, sha256: str) -> bool:
        return sha256 in self._kept or self._real.exists(sha256)

    def size(self, sha256: str, *, session: Session | None = None) -> int:
        if sha256 in self._kept:
            return len(self._kept[sha256])
        return self._real.size(sha256, session=session)

    def delete(self, sha256: str) -> bool:
        raise BlobNotFoundError(f"explain deletes nothing ({sha256})")

    def names(self) -> Iterator[str]:
        return iter(self._kept)


def add_explained_row(session: Session, raw: bytes, envelope: Envelope) -> int:
    """The inbox row a mail read from a file gets for the length of the rolled-back transaction,
    so the stages and the planner find the row they refer to."""
    (inbox_id,) = add_rows(session, [(raw, envelope)])
    return inbox_id


def set_aside_seen(session: Session, inbox_id: int) -> bool:
    """Forget, in this transaction only, that this inbox row was processed, so explaining a mail
    of the inbox says what it would do now rather than "a duplicate of itself"."""
    return bool(execute(session, delete(SeenMail).where(SeenMail.inbox_id == inbox_id)).rowcount)


@dataclass(frozen=True)
class Marks:
    """The largest outbox and event ids before the stages ran: what they add is above them."""

    outbox: int
    event: int
    message: int


def marks(session: Session) -> Marks:
    tops = [
        int(execute(session, select(func.coalesce(func.max(table.id), 0))).scalar_one())
        for table in (OutboxRow, Event, Message)
    ]
    return Marks(*tops)


def stored_text_after(session: Session, before: Marks, inbox_id: int) -> str | None:
    """The text of the message the stages added for the mail (None: they added none)."""
    query = (
        select(Message.text)
        .where(Message.id > before.message, Message.inbox_id == inbox_id)
        .order_by(Message.id.desc())
        .limit(1)
    )
    return execute(session, query).scalar()


@dataclass(frozen=True)
class Queued:
    template: str
    to: str


def queued_after(session: Session, before: Marks, inbox_id: int) -> list[Queued]:
    """The notifications this transaction queued for the mail, in the order queued."""
    rows = execute(
        session,
        select(OutboxRow.template, OutboxRow.to_address)
        .where(OutboxRow.id > before.outbox, OutboxRow.inbox_id == inbox_id)
        .order_by(OutboxRow.id),
    )
    return [Queued(template, to) for template, to in rows]


def skipped_after(session: Session, before: Marks, inbox_id: int) -> Sequence[str]:
    """Why notifications were not sent for the mail (the planner's `notification_skipped` events)."""
    rows = execute(
        session,
        select(Event.new)
        .where(
            Event.id > before.event,
            Event.inbox_id == inbox_id,
            Event.kind == EventKind.NOTIFICATION_SKIPPED.value,
        )
        .order_by(Event.id),
    )
    return [str(note) for (note,) in rows if note]


@contextmanager
def numbers_kept(session: Session) -> Iterator[None]:
    """Keep the ticket and inbox numbers a rolled-back transaction would use up.

    PostgreSQL's sequences are not transactional: a ticket row inserted and rolled back would still
    have taken its number, and the next real ticket would skip one. So, in this transaction only,
    a row inserted into `tickets` or `inbox` without an id gets the number the sequence would give
    next, read without taking it (`last_value`). A writer that takes that number meanwhile waits on
    the unique index until this transaction rolls back, then goes on. SQLite needs none of this:
    its next id is one past the largest, which the rollback restores."""
    conn = connection(session)
    if conn.dialect.name != "postgresql":
        yield
        return
    next_ids: dict[str, int] = {}

    def numbered(table: Any, row: dict[str, Any]) -> dict[str, Any]:
        if row.get("id") is None:
            if table.name not in next_ids:
                next_ids[table.name] = _peek(conn, table.name)
            row = {**row, "id": next_ids[table.name]}
            next_ids[table.name] += 1
        return row

    def before_execute(
        _conn: Connection, elem: Any, multiparams: Any, params: Any, _options: Any
    ) -> tuple[Any, Any, Any]:
        if isinstance(elem, Insert) and getattr(elem.table, "name", None) in _KEPT_NUMBERS:
            if multiparams:
                multiparams = [numbered(elem.table, dict(row)) for row in multiparams]
            elif params:
                params = numbered(elem.table, dict(params))
        return elem, multiparams, params

    event.listen(conn, "before_execute", before_execute, retval=True)
    forget_listeners(session)  # the statements run on the DB-API cursor now go through it
    try:
        yield
    finally:
        event.remove(conn, "before_execute", before_execute)
        forget_listeners(session)


def _peek(conn: Connection, table: str) -> int:
    """The value the table's id sequence gives next, without taking it."""
    sequence = conn.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar_one()
    last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {sequence}").one()
    return int(last) + 1 if called else int(last)
