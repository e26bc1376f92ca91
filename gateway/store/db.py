"""The engine and the unit of work, set up the same way for SQLite and PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL` (a commit survives power loss, which is what a
`250` promises) and every transaction begins IMMEDIATE, so two writers (the daemon and a piped
`ingest`) queue on the busy timeout instead of failing on a lock upgrade.

The daemon's writers (the group-commit writer, the processors — in worker processes too — the
sender) also queue on a lock of their own in front of `BEGIN IMMEDIATE` (`SqliteWriteLock`):
SQLite's busy handler sleeps in growing steps (up to 100 ms) instead of waking when the lock frees,
which made a `250` wait for hundreds of milliseconds behind the processor.

Intake goes first on that lock (`intake_first`, `intake_waiting`): while the group-commit writer
waits for it, the other writers let it go ahead of them and the processor ends its batch between
two mails, so a `250` waits for one mail's statements rather than a whole batch.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import TransientError
from gateway.store.direct import has_execute_listeners
from gateway.store.rows import connection as transaction_connection

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT = 10
# How long a writer that is not intake lets a waiting intake go first, at most, before it queues for
# the write lock anyway: intake waits for one holder's transaction, so this is a backstop for a
# holder that is none of ours (the sqlite3 shell), never the common wait.
INTAKE_FIRST_LIMIT_SECONDS = 0.5
# A pooled PostgreSQL connection idle this long is pinged before use (`_ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 1.0


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str,
    *,
    sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
    connect_timeout: int = POSTGRES_CONNECT_TIMEOUT,
    reply_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for `url`; SQLite gets its durability and locking pragmas on every connection.

    PostgreSQL gets a connect timeout, so a server that silently drops packets turns into a
    prompt "try again later" rather than a sender waiting on a hung session. `reply_timeout`
    (the daemon's `database.reply_timeout`): every wait for an answer on a PostgreSQL connection
    ends after that many seconds, closing the connection (gateway/store/pg_connection.py), and
    libpq's keepalives and `tcp_user_timeout` find a vanished peer; None: no bound (commands).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"timeout": sqlite_busy_timeout, "isolation_level": None},
            **kwargs,
        )
        database = parsed.database or ""
        on_disk = database not in ("", ":memory:") and not database.startswith("file:")
        path = os.path.abspath(database)
        _configure_sqlite(
            engine,
            busy_timeout_ms=int(sqlite_busy_timeout * 1000),
            lock_path=f"{path}-writelock" if on_disk else None,
            intake_path=f"{path}-intake" if on_disk else None,
        )
        return engine
    if parsed.get_backend_name() != "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    connect_args: dict[str, Any] = {"connect_timeout": connect_timeout}
    if reply_timeout is not None:
        from gateway.store.pg_connection import tcp_settings  # psycopg: PostgreSQL only

        # What the URL's query names itself (?keepalives_idle=…) is the administrator's and stays.
        connect_args |= {k: v for k, v in tcp_settings(reply_timeout).items() if k not in parsed.query}
    kwargs.setdefault("connect_args", connect_args)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    if reply_timeout is not None:
        _bound_replies(engine, reply_timeout)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """A pooled PostgreSQL connection is pinged (`SELECT 1`) at checkout only when it has sat in
    the pool `PING_AFTER_IDLE_SECONDS` or more; a dead one is replaced, and with it every connection
    the pool made before (a restart took them all), as the pool's pre-ping does.

    The pre-ping did it at every checkout: one round trip of four in each of intake's commits and
    of the processor's transactions under load, for connections used milliseconds before. What a
    connection that died within that second meets instead is its first statement failing as a lost
    connection: the transaction is rolled back unsent (intake answers "try again later", the
    processor and the sender retry, gateway/store/db.py callers all see DatabaseFault) and the pool
    is invalidated as by a failed ping, so each pool meets a restart at most once, in the thread
    that was using it. A connection that hangs rather than dies is what `database.reply_timeout`
    bounds (gateway/store/pg_connection.py)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # just made, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise InvalidatePoolError(f"ping after idle failed: {_first_line(exc)}") from exc


def _bound_replies(engine: Engine, reply_timeout: float) -> None:
    """Every connection the engine makes is one whose waits for the server end (pg_connection)."""
    from gateway.store.pg_connection import bounded_connection_class

    connection_class = bounded_connection_class(reply_timeout)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return connection_class.connect(*cargs, **cparams)


class SqliteWriteLock:
    """The turn on SQLite's single write lock, taken before `BEGIN IMMEDIATE`.

    Within a process a `threading.Lock` hands over to the next waiter as soon as it is released,
    so writers queue in order rather than polling SQLite's busy handler. Across processes (the
    daemon's worker processes, a piped `ingest`) an advisory `flock` on a file beside the database
    (`<database>-writelock`) does the same; a process that finds it held tries again after 0.1 ms,
    then at growing steps of at most 2 ms — polling, so that the wait keeps its timeout, but
    fifty times finer than SQLite's busy handler and sparing with the CPU it shares. A process
    that does not take it (an older ticketgate, the sqlite3 shell) meets SQLite's lock as before.

    The turn is owned by the DBAPI connection whose transaction took it and given back once that
    connection's COMMIT or ROLLBACK has run, or the connection is closed or invalidated, whichever
    thread does that.

    Intake's group commit goes ahead of the queue: while a thread inside `intake_first` waits here
    it says so through `IntakeSignal`, and every other writer lets it through before queueing.

    It never adds a way to hang: a thread that already holds it (a second transaction opened
    while its first is still open) does not wait for itself but meets SQLite's lock and busy
    timeout as before, and a wait longer than the busy timeout fails as SQLite's own would
    ("database is locked"), so no writer waits longer than before.
    """

    def __init__(self, timeout: float, lock_path: str | None = None, intake_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._guard = threading.Lock()  # protects the owner fields
        self._timeout = timeout
        self._owner: Any = None  # the DBAPI connection holding the lock
        self._owner_thread: int | None = None
        self._lock_path = lock_path
        self._lock_fd: int | None = None  # opened on first use, so a read-only user never creates it
        self._lock_pid = 0  # a forked child must open its own: flock belongs to the open file
        self.intake = IntakeSignal(intake_path) if intake_path is not None else None

    def acquire(self, dbapi_connection: Any) -> None:
        """Wait for the turn of `dbapi_connection`; raises as SQLite would once the wait is too long.

        Intake's writer (a thread inside `intake_first`) says it is waiting for the whole of its
        wait; any other writer first lets a waiting intake go ahead of it (`IntakeSignal`)."""
        dbapi_connection = _unwrapped(dbapi_connection)
        with self._guard:
            if self._owner_thread == threading.get_ident():
                return
        deadline = time.monotonic() + self._timeout
        first = getattr(_intake_thread, "first", False)
        if self.intake is not None:
            if first:
                self.intake.hold()
            else:
                self.intake.let_through(min(deadline, time.monotonic() + INTAKE_FIRST_LIMIT_SECONDS))
        try:
            self._take(deadline)
        finally:
            if first and self.intake is not None:
                self.intake.drop()
        with self._guard:
            self._owner, self._owner_thread = dbapi_connection, threading.get_ident()

    def _take(self, deadline: float) -> None:
        if not self._lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise _locked()
        try:
            self._lock_other_processes(deadline)
        except BaseException:
            self._lock.release()
            raise

    def release(self, dbapi_connection: Any) -> None:
        """Give the turn back if `dbapi_connection` holds it; otherwise do nothing."""
        dbapi_connection = _unwrapped(dbapi_connection)
        with self._guard:
            if self._owner is None or self._owner is not dbapi_connection:
                return
            self._owner, self._owner_thread = None, None
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._lock.release()

    def _lock_other_processes(self, deadline: float) -> None:
        fd = self._lock_file()
        if fd is None:
            return
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise _locked()
            time.sleep(pause)
            pause = min(pause * 2, 0.002)

    def _lock_file(self) -> int | None:
        if self._lock_path is None:
            return None
        if self._lock_fd is None or self._lock_pid != os.getpid():
            try:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EROFS, errno.ENOENT):
                    raise
                self._lock_path = None  # a read-only place: SQLite's own lock still guards writes
                return None
            self._lock_pid = os.getpid()
        return self._lock_fd


class IntakeSignal:
    """Intake is waiting for the write lock, told across threads and processes: a shared `flock` on a
    file beside the database (`<database>-intake`) that intake's writer holds while it waits.

    Anyone else asks by trying the file exclusively without waiting (two syscalls, ~1 µs): failing
    means some intake holds it. `flock` belongs to the open file, so the holder's and the askers'
    descriptors are apart and a thread of the same process (`processing.processes = 0`) sees intake
    as another process would. An asker's own brief exclusive hold only makes intake's `hold` wait
    those microseconds, or another asker see a waiting intake that is not there: a batch ends early.
    A place where the file cannot be made (read-only) gives no signal: the time bound alone, as before.
    """

    def __init__(self, path: str) -> None:
        self._path: str | None = path
        self._guard = threading.Lock()
        self._holders = 0  # threads of this process holding it: one flock for all of them
        self._fds: tuple[int, int] | None = None  # (held, asked), opened on first use
        self._pid = 0

    def hold(self) -> None:
        with self._guard:
            fds = self._files()
            if fds is not None and self._holders == 0:
                fcntl.flock(fds[0], fcntl.LOCK_SH)
            self._holders += 1

    def drop(self) -> None:
        with self._guard:
            self._holders -= 1
            if self._holders == 0 and self._fds is not None and self._pid == os.getpid():
                fcntl.flock(self._fds[0], fcntl.LOCK_UN)

    def waiting(self) -> bool:
        """Whether an intake writer (of this process or another) waits for the write lock now."""
        fds = self._files()
        if fds is None:
            return False
        try:
            fcntl.flock(fds[1], fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fds[1], fcntl.LOCK_UN)
        return False

    def let_through(self, until: float) -> None:
        """Wait while intake waits (it then has the lock, or is next in line for it), until `until`
        at the latest; polled as the write lock is across processes."""
        pause = 0.0001
        while self.waiting() and time.monotonic() < until:
            time.sleep(pause)
            pause = min(pause * 2, 0.002)

    def _files(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        if self._fds is None or self._pid != os.getpid():
            try:
                held = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                asked = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EROFS, errno.ENOENT):
                    raise
                self._path = None  # a read-only place: no signal, the batch's time bound alone
                return None
            self._fds, self._pid, self._holders = (held, asked), os.getpid(), 0
            weakref.finalize(self, _close, held, asked)  # an engine made and dropped (commands, tests)
        return self._fds


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


_intake_thread = threading.local()  # `first`: this thread is intake's writer (intake_first)
_write_locks: weakref.WeakKeyDictionary[Engine, SqliteWriteLock] = weakref.WeakKeyDictionary()


@contextmanager
def intake_first() -> Iterator[None]:
    """The writes of the current thread within go ahead of every other writer on SQLite's write
    lock: for intake's group commit, whose `250`s wait for it. Other writers let it through before
    they queue (`SqliteWriteLock.acquire`), and the processor ends its batch when it asks
    `intake_waiting` between two mails. Nothing on PostgreSQL, which has no such lock."""
    before = getattr(_intake_thread, "first", False)
    _intake_thread.first = True
    try:
        yield
    finally:
        _intake_thread.first = before


def intake_waiting(engine: Engine) -> bool:
    """Whether intake's writer waits for SQLite's write lock now (False on PostgreSQL)."""
    write_lock = _write_locks.get(engine)
    return write_lock is not None and write_lock.intake is not None and write_lock.intake.waiting()


def _locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))


def _unwrapped(connection: Any) -> Any:
    """The raw DBAPI connection: the dialect's commit and rollback get the pool's proxy of it."""
    return getattr(connection, "dbapi_connection", None) or connection


def _configure_sqlite(
    engine: Engine, *, busy_timeout_ms: int, lock_path: str | None, intake_path: str | None
) -> None:
    write_lock = SqliteWriteLock(busy_timeout_ms / 1000, lock_path, intake_path)
    _write_locks[engine] = write_lock
    engine.dialect.do_commit = _after(engine.dialect.do_commit, write_lock)  # type: ignore[method-assign]
    engine.dialect.do_rollback = _after(engine.dialect.do_rollback, write_lock)  # type: ignore[method-assign]

    @event.listens_for(engine, "close")
    @event.listens_for(engine, "invalidate")
    def _on_gone(dbapi_connection: Any, _record: Any, *_args: Any) -> None:
        write_lock.release(dbapi_connection)

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
        dbapi_connection = connection.connection.dbapi_connection
        write_lock.acquire(dbapi_connection)
        try:
            _begin_immediate(connection, dbapi_connection)
        except BaseException:
            write_lock.release(dbapi_connection)
            raise


def _begin_immediate(connection: Connection, dbapi_connection: Any) -> None:
    """`BEGIN IMMEDIATE` on the DB-API cursor, as `direct.py` runs the hot statements: through
    `exec_driver_sql` SQLAlchemy's execution machinery cost more than the statement, on every
    transaction. A driver error goes to the connection's own handling, so the caller sees
    SQLAlchemy's OperationalError (and a lost connection is invalidated) exactly as before; with
    execute listeners (which must see every statement) it goes through SQLAlchemy still."""
    if has_execute_listeners(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        connection._handle_dbapi_exception(exc, "BEGIN IMMEDIATE", (), cursor, None)  # raises
    finally:
        cursor.close()


def _after(finish: Any, write_lock: SqliteWriteLock) -> Any:
    """`finish` (the dialect's COMMIT or ROLLBACK), then the write lock goes to the next writer."""

    def finish_then_release(dbapi_connection: Any) -> None:
        try:
            finish(dbapi_connection)
        finally:
            write_lock.release(dbapi_connection)

    return finish_then_release


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, snapshot: bool = False) -> Iterator[Session]:
    """One transaction: commits on success, rolls back on any error.

    A database fault (connection refused, disk full, locked too long) surfaces as TransientError,
    so callers answer "try again later" instead of losing the mail.

    `snapshot`: every statement sees the database as of the first one (PostgreSQL REPEATABLE READ;
    SQLite's transactions are BEGIN IMMEDIATE, one at a time, so they already do). For commands that
    read a ticket in several statements, so a commit landing between two of them cannot show a new
    message beside the old status.
    """
    try:
        with factory() as session, session.begin():
            if snapshot and session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session
    except SQLAlchemyError as exc:
        raise database_unavailable(exc) from exc


@contextmanager
def connection_of_work(engine: Engine) -> Iterator[Connection]:
    """One transaction on a connection of its own, without an ORM session: for a transaction of a
    statement or two built once (storing a mail), where setting up a session and its transaction
    cost as much as the statements (~0.25 M instructions of ~0.58 M for an empty transaction on
    SQLite). Begun, committed, rolled back and faults reported as `unit_of_work` does."""
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise database_unavailable(exc) from exc


class DatabaseFault(TransientError):
    """The database failed (connection refused, disk full, locked too long): try again later. The
    transaction it happened in may be unusable, so its other work is not to be trusted either."""


def database_unavailable(exc: SQLAlchemyError) -> DatabaseFault:
    """A database fault as the TransientError that callers answer with "try again later"."""
    return DatabaseFault(f"database unavailable: {exc.__class__.__name__}: {_first_line(exc)}")


@contextmanager
def as_database_fault() -> Iterator[None]:
    """Any error of the database inside, as DatabaseFault (for a caller outside the store, which
    does not see SQLAlchemy's exceptions)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise database_unavailable(exc) from exc


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A savepoint in `session`'s transaction: released on success, rolled back on any error, so
    the work inside is undone alone while the transaction goes on. A database fault surfaces as
    DatabaseFault.

    The savepoint is the connection's, not the ORM session's (`Session.begin_nested` costs a flush
    and the session's transaction bookkeeping on entry and on release, a few per cent of a mail):
    what the ORM holds is flushed before the release, so it lands inside the savepoint; and after a
    rollback the caller must drop every object the work inside touched (`Session.expunge_all`), as
    the session does not know its rows were undone. The processor, the one caller, does both."""
    try:
        with transaction_connection(session).begin_nested():
            yield
            session.flush()
    except SQLAlchemyError as exc:
        raise database_unavailable(exc) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
