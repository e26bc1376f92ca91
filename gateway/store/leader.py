"""Singleton jobs across nodes: a session-level PostgreSQL advisory lock held on a connection of
its own. PostgreSQL drops it when that connection ends — a node SIGKILLed or cut off loses it at
once — so another node takes the job over at its next try. SQLite is one node: always granted.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import TransientError
from gateway.store.db import is_sqlite


class HeldLock(Protocol):
    def held(self) -> bool: ...

    def release(self) -> None: ...


class _Granted:
    def held(self) -> bool:
        return True

    def release(self) -> None:
        return None


class _SessionLock:
    def __init__(self, connection: Connection, key: int) -> None:
        self._connection = connection
        self._key = key

    def held(self) -> bool:
        """Whether the connection (and so the lock) is still there."""
        try:
            self._connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def release(self) -> None:
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except SQLAlchemyError:
            pass  # the connection is gone, and the lock with it
        finally:
            self._connection.close()


def try_lock(engine: Engine, key: int) -> HeldLock | None:
    """The lock `key`, or None while another node holds it; TransientError when the database is down."""
    if is_sqlite(engine):
        return _Granted()
    try:
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise TransientError(f"database unavailable: {exc.__class__.__name__}") from exc
    try:
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
    except SQLAlchemyError as exc:
        connection.close()
        raise TransientError(f"database unavailable: {exc.__class__.__name__}") from exc
    if not got:
        connection.close()
        return None
    return _SessionLock(connection, key)
