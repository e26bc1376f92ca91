"""The two helpers of the write path that skips the ORM's unit of work (see gateway/store/tickets.py).

Every mail writes a handful of rows; through the ORM each one costs several times the SQL itself
(flush planning, identity bookkeeping, attribute history). These run Core statements built once
at import on the session's own connection, in its transaction, and — where later steps of the
same transaction want the ORM object — put the inserted row into the session as if loaded.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, CursorResult, Executable, event
from sqlalchemy.orm import Session, SessionTransaction, class_mapper, make_transient_to_detached

# The connection of the session's current transaction, kept in `session.info` while it lasts:
# `Session.connection()` walks the transaction's bookkeeping on every call, a few per cent of a
# mail's processing at the dozen statements each mail runs.
T = TypeVar("T")

_CONNECTION = "rows.connection"
# What is true for the length of the session's current (outermost) transaction only: forgotten with
# its connection when it ends, however it ends (see `in_transaction`).
_TRANSACTION = "rows.transaction"


def execute(session: Session, statement: Executable, params: Any = None) -> CursorResult[Any]:
    """A Core statement in the session's transaction, with no unit-of-work bookkeeping."""
    return connection(session).execute(statement, params)  # type: ignore[return-value]


def connection(session: Session) -> Connection:
    """The connection the session's current transaction runs on (begun if it was not yet)."""
    found: Connection | None = session.info.get(_CONNECTION)
    if found is None:
        found = session.info[_CONNECTION] = session.connection()
    return found


@event.listens_for(Session, "after_transaction_end")
def _forget_connection(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction is over (commit, rollback or close): its connection goes back to
    the pool, and the next transaction may get another one."""
    if transaction.parent is None:
        session.info.pop(_CONNECTION, None)
        session.info.pop(_TRANSACTION, None)


def in_transaction(session: Session) -> dict[str, Any]:
    """A dict kept for the session's current outermost transaction and dropped when it ends. Only
    for what a savepoint rolled back inside it cannot make wrong (e.g. the next id to hand out:
    a rollback leaves a gap, never a duplicate)."""
    found: dict[str, Any] | None = session.info.get(_TRANSACTION)
    if found is None:
        connection(session)  # begun, so that its end is seen
        found = session.info[_TRANSACTION] = {}
    return found


def built(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the mapped class `cls` holding `values` as a loaded row holds them, made
    without its constructor, which sets each attribute through the ORM's instrumentation (about
    thirty times the cost, for rows built on every mail). Later changes to it are tracked as
    usual; `attach_inserted` then puts it into the session as loaded."""
    instance: T = class_mapper(cls).class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


def attach_inserted(session: Session, instance: Any) -> None:
    """Put a row just inserted by a Core statement into the session as if it had been loaded, so
    `session.get` finds it without a query (every column must be set on `instance`).

    The identity map holds its objects weakly; `session.info` keeps this one alive until the
    session ends, or a later `get` would miss it once the code that made it has returned."""
    make_transient_to_detached(instance)
    session.add(instance)
    keep(session, instance)


def keep(session: Session, instance: Any) -> None:
    """Hold `instance` (in the session's identity map) until the processor ends the mail: the map
    holds objects weakly, so a row one step of a mail read (threading's ticket) would otherwise be
    read again by the next step that asks for it."""
    session.info.setdefault("inserted_rows", []).append(instance)
