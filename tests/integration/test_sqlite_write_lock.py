"""The in-process SQLite write lock: writers take turns, and no way out of a transaction keeps it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import TransientError
from gateway.store.db import make_engine, make_session_factory, unit_of_work


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}", sqlite_busy_timeout=2)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    return engine


def _write_from_other_thread(sessions: sessionmaker[Session]) -> float:
    """Seconds another thread needs to commit a write: short when nothing holds the lock."""
    took: list[float] = []

    def write() -> None:
        start = time.monotonic()
        with unit_of_work(sessions) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
        took.append(time.monotonic() - start)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=10)
    assert took, "the other writer never finished"
    return took[0]


def test_commit_rollback_and_plain_connections_give_the_lock_back(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    assert _write_from_other_thread(sessions) < 1
    with pytest.raises(ValueError), unit_of_work(sessions) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        raise ValueError("boom")
    assert _write_from_other_thread(sessions) < 1
    with engine.connect() as connection:  # ends without commit: the pool rolls back
        connection.execute(text("SELECT 1"))
    assert _write_from_other_thread(sessions) < 1


def test_an_invalidated_connection_gives_the_lock_back(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with sessions() as session:
        session.begin()
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.connection().invalidate()
    assert _write_from_other_thread(sessions) < 1


def test_a_waiting_writer_goes_as_soon_as_the_holder_commits(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        waiter = threading.Thread(target=_write_from_other_thread, args=(sessions,))
        waiter.start()
        time.sleep(0.3)
    started = time.monotonic()
    waiter.join(timeout=10)
    assert time.monotonic() - started < 0.1  # no busy-handler sleep after the hand-over
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 2


def test_a_nested_transaction_on_the_same_thread_fails_as_before_instead_of_hanging(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    started = time.monotonic()
    with pytest.raises(TransientError), unit_of_work(sessions) as outer:
        outer.execute(text("INSERT INTO t VALUES (1)"))
        with unit_of_work(sessions) as inner:  # SQLite's own lock and busy timeout (2 s) decide
            inner.execute(text("INSERT INTO t VALUES (2)"))
    assert time.monotonic() - started < 5
    assert _write_from_other_thread(sessions) < 1


def test_a_writer_waits_no_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'busy.db'}", sqlite_busy_timeout=0.5)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        failed: list[float] = []

        def write() -> None:
            started = time.monotonic()
            with pytest.raises(TransientError, match="OperationalError"), unit_of_work(sessions) as other:
                other.execute(text("INSERT INTO t VALUES (2)"))
            failed.append(time.monotonic() - started)

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=10)
    assert failed and 0.4 < failed[0] < 0.9  # the busy timeout once, not twice
    assert _write_from_other_thread(sessions) < 1
