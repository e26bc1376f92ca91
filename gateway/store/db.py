"""The engine and the unit of work, set up the same way for SQLite and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL` (a commit survives power loss, which is what a
`250` promises) and every transaction begins IMMEDIATE, so two writers (the daemon and a piped
`ingest`) queue on the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import TransientError

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT = 10


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str,
    *,
    sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
    connect_timeout: int = POSTGRES_CONNECT_TIMEOUT,
    **kwargs: Any,
) -> Engine:
    """An engine for `url`; SQLite gets its durability and locking pragmas on every connection.

    PostgreSQL gets a connect timeout, so a server that silently drops packets turns into a
    prompt "try again later" rather than a sender waiting on a hung session.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": sqlite_busy_timeout, "isolation_level": None},
            **kwargs,
        )
        _configure_sqlite(engine, busy_timeout_ms=int(sqlite_busy_timeout * 1000))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("connect_args", {"connect_timeout": connect_timeout})
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commits on success, rolls back on any error.

    A database fault (connection refused, disk full, locked too long) surfaces as TransientError,
    so callers answer "try again later" instead of losing the mail.
    """
    try:
        with factory() as session, session.begin():
            yield session
    except SQLAlchemyError as exc:
        raise TransientError(f"database unavailable: {exc.__class__.__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
