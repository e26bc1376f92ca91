"""The SQLite write lock: writers take turns, across processes too; no way out of a transaction keeps it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import TransientError
from gateway.store.db import intake_waiting, make_engine, make_session_factory, unit_of_work
from tests.helpers import PROJECT_ROOT


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


_HOLD_IN_ANOTHER_PROCESS = """
import sys, time
from sqlalchemy import text
from gateway.store.db import intake_waiting, make_engine, make_session_factory, unit_of_work
sessions = make_session_factory(make_engine(sys.argv[1], sqlite_busy_timeout=5))
with unit_of_work(sessions) as session:
    session.execute(text("INSERT INTO t VALUES (3)"))
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
print("committed", time.monotonic(), flush=True)
"""


def test_a_writer_in_another_process_goes_as_soon_as_the_holder_commits(tmp_path: Path) -> None:
    """The daemon's worker processes and `serve` hand the lock over through the lock file, not
    through SQLite's busy handler, which would sleep up to 100 ms past the commit."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url, sqlite_busy_timeout=5)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    sessions = make_session_factory(engine)
    delays = []
    for _ in range(3):
        with subprocess.Popen(
            [sys.executable, "-c", _HOLD_IN_ANOTHER_PROCESS, url, "0.4"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        ) as holder:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "holding"
            started = time.monotonic()
            with unit_of_work(sessions) as session:
                session.execute(text("INSERT INTO t VALUES (4)"))
            done = time.monotonic()
            committed = float(holder.stdout.readline().split()[1])
        assert done - started > 0.2  # it did wait for the other process
        delays.append(done - committed)
    assert min(delays) < 0.02, delays  # its own commit included; the busy handler took 30+ ms
    assert (tmp_path / "shared.db-writelock").exists()


_INTAKE_IN_ANOTHER_PROCESS = """
import sys
from sqlalchemy import text
from gateway.store.db import intake_first, make_engine, make_session_factory, unit_of_work
sessions = make_session_factory(make_engine(sys.argv[1], sqlite_busy_timeout=5))
print("ready", flush=True)
sys.stdin.readline()
with intake_first(), unit_of_work(sessions) as session:
    session.execute(text("INSERT INTO t VALUES (5)"))
print("stored", flush=True)
"""


def test_a_writer_lets_a_waiting_intake_of_another_process_go_first(tmp_path: Path) -> None:
    """Intake's writer (`intake_first`) waits in another process, polling the lock file, while this
    process holds the lock; a writer of this process that comes after it would have the lock at
    once when the holder commits (its own process hands it over without a poll). It lets intake
    through first instead: intake's row is written before its own."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url, sqlite_busy_timeout=5)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    sessions = make_session_factory(engine)
    with subprocess.Popen(
        [sys.executable, "-c", _INTAKE_IN_ANOTHER_PROCESS, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    ) as intake:
        assert intake.stdin is not None and intake.stdout is not None
        assert intake.stdout.readline().strip() == "ready"
        with unit_of_work(sessions) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            intake.stdin.write("go\n")
            intake.stdin.flush()
            deadline = time.monotonic() + 10
            while not intake_waiting(engine) and time.monotonic() < deadline:
                time.sleep(0.001)
            assert intake_waiting(engine)
            later = threading.Thread(target=_write_from_other_thread, args=(sessions,))
            later.start()
            time.sleep(0.1)  # the later writer is waiting too
        later.join(timeout=10)
        assert intake.stdout.readline().strip() == "stored"
    with engine.connect() as connection:
        assert [x for (x,) in connection.execute(text("SELECT x FROM t ORDER BY rowid"))] == [1, 5, 1]
    assert not intake_waiting(engine)
