"""PostgreSQL connections are pinged before use only after sitting idle (gateway/store/db.py,
`_ping_when_idle`), not at every checkout: the round trip it saved is one of four in each of
intake's commits under load. Against a private server really restarted (tests/faults/postgres.py):
a connection idle past the bound is found dead by its ping and replaced, so the write succeeds; one
used a moment before fails once as "try again later" (DatabaseFault), never loses a write, and the
next write runs on a new connection."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from gateway.store import db
from gateway.store.db import DatabaseFault, make_engine, make_session_factory, unit_of_work
from tests.faults.postgres import PrivatePostgres
from tests.faults.suite import private_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    yield from private_postgres()


@pytest.fixture
def engine(postgres: PrivatePostgres) -> Iterator[Engine]:
    engine = make_engine(postgres.create_database(), reply_timeout=10)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    yield engine
    engine.dispose()


def _write(engine: Engine, value: int) -> None:
    with unit_of_work(make_session_factory(engine)) as session:
        session.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})


def _values(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [x for (x,) in connection.execute(text("SELECT x FROM t ORDER BY x"))]


def test_an_idle_connection_is_pinged_and_replaced_after_a_restart(
    engine: Engine, postgres: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    _write(engine, 1)
    postgres.restart()
    time.sleep(0.3)  # the pooled connection has been idle past the bound
    _write(engine, 2)  # no fault: the ping found the dead connection and the pool made a new one
    assert _values(engine) == [1, 2]


def test_a_connection_used_a_moment_ago_fails_once_then_the_pool_starts_afresh(
    engine: Engine, postgres: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)  # as under load: never idle that long
    _write(engine, 1)
    postgres.restart()
    with pytest.raises(DatabaseFault):  # the dead connection, met by the write itself: nothing stored
        _write(engine, 2)
    _write(engine, 3)  # once: the pool threw away every connection it had before the restart
    assert _values(engine) == [1, 3]
