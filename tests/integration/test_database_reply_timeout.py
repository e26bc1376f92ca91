"""`database.reply_timeout` (gateway/store/pg_connection.py): a PostgreSQL connection whose bytes
are swallowed (the fault proxy's blackhole: TCP stays up, nothing comes back) makes the daemon's
wait end after the bound with "try again later", instead of hanging its thread for good; once the
route is back the next unit of work runs on a new connection. Real PostgreSQL behind a real TCP
proxy; the whole daemon under the same fault is tests/integration/test_fault_suite.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, text

from gateway.store.db import DatabaseFault, make_engine, make_session_factory, unit_of_work
from gateway.store.outbox_wake import listen_for_queued
from tests.faults.proxy import FaultProxy

BOUND = 1.5


@pytest.fixture
def proxied_url(fresh_postgres: str) -> Iterator[tuple[str, FaultProxy]]:
    url = make_url(fresh_postgres)
    with FaultProxy(url.port or 5432, target_host=url.host or "127.0.0.1") as proxy:
        yield url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False), proxy


def _select_one(factory) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work(factory) as session:
        return int(session.scalar(text("SELECT 1")))


def test_a_swallowed_request_fails_after_the_bound_and_the_next_one_runs_on_a_new_connection(
    proxied_url: tuple[str, FaultProxy],
) -> None:
    url, proxy = proxied_url
    # connect_timeout 2: the pool's reconnect through the blackhole waits that long (10 in serve)
    engine = make_engine(url, reply_timeout=BOUND, pool_size=1, max_overflow=0, connect_timeout=2)
    factory = make_session_factory(engine)
    try:
        assert _select_one(factory) == 1  # a pooled connection, idle when the route goes
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(DatabaseFault, match="database unavailable"):
            _select_one(factory)  # the pool's pre-ping is swallowed, then the reconnect's
        waited = time.monotonic() - started
        # The bound ends the wait; the reconnect through the blackhole ends on connect_timeout.
        assert BOUND <= waited < 30, waited
        proxy.pass_through()
        assert _select_one(factory) == 1
    finally:
        engine.dispose()


def test_a_commit_swallowed_mid_transaction_fails_and_the_server_rolls_the_transaction_back(
    proxied_url: tuple[str, FaultProxy], fresh_postgres: str
) -> None:
    url, proxy = proxied_url
    direct = make_engine(fresh_postgres)
    engine = make_engine(url, reply_timeout=BOUND, pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    try:
        with direct.begin() as connection:
            connection.execute(text("CREATE TABLE held (id int PRIMARY KEY)"))
            connection.execute(text("INSERT INTO held VALUES (1)"))
        started = time.monotonic()
        with pytest.raises(DatabaseFault), unit_of_work(factory) as session:
            session.execute(text("UPDATE held SET id = 2 WHERE id = 1"))  # row lock taken
            proxy.blackhole()  # the COMMIT goes nowhere
        assert time.monotonic() - started < 10
        # The closed client socket made the proxy drop its upstream side: the server rolled the
        # transaction back, so the row is unlocked and unchanged.
        deadline = time.monotonic() + 10
        while True:
            with direct.connect() as connection:
                connection.execute(text("SET lock_timeout = '500ms'"))
                try:
                    assert connection.execute(text("SELECT id FROM held FOR UPDATE")).scalar() == 1
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
        proxy.pass_through()
        assert _select_one(factory) == 1
    finally:
        engine.dispose()
        direct.dispose()


def test_without_a_bound_a_command_keeps_waiting(proxied_url: tuple[str, FaultProxy]) -> None:
    """What commands get (no `reply_timeout`): the swallowed request is still waited for after
    several bounds' time — the bound is the daemon's, not every connection's."""
    url, proxy = proxied_url
    engine = make_engine(url, pool_size=1, max_overflow=0)
    factory = make_session_factory(engine)
    outcome: list[object] = []
    try:
        assert _select_one(factory) == 1
        proxy.blackhole()
        worker = threading.Thread(target=lambda: outcome.append(_try(factory)), daemon=True)
        worker.start()
        worker.join(timeout=3 * BOUND)
        assert worker.is_alive() and outcome == []
    finally:
        proxy.pass_through()
        proxy.cut()  # ends the swallowed wait: the thread sees its connection reset
        worker.join(timeout=10)
        engine.dispose()


def _try(factory) -> object:  # type: ignore[no-untyped-def]
    try:
        return _select_one(factory)
    except DatabaseFault as exc:
        return exc


def test_the_listener_notices_a_deaf_connection_and_listens_again(
    proxied_url: tuple[str, FaultProxy], fresh_postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LISTEN connection waits for notifications with a timeout of its own, so a deaf one
    would never be noticed: its liveness check (`SELECT 1`) fails after the bound, and it listens
    anew on a new connection, where a NOTIFY wakes the sender again."""
    import gateway.store.outbox_wake as outbox_wake

    monkeypatch.setattr(outbox_wake, "LIVENESS_SECONDS", 0.5)
    monkeypatch.setattr(outbox_wake, "RECONNECT_SECONDS", 0.2)
    url, proxy = proxied_url
    engine = make_engine(url)
    direct = make_engine(fresh_postgres)
    wakes = threading.Semaphore(0)
    stop = threading.Event()
    listener = threading.Thread(
        target=listen_for_queued,
        args=(engine, wakes.release, stop),
        kwargs={"reply_timeout": BOUND},
        daemon=True,
    )
    listener.start()
    try:
        assert wakes.acquire(timeout=10)  # listening
        proxy.blackhole()
        time.sleep(1.2)  # longer than LIVENESS_SECONDS: a liveness check is swallowed
        proxy.pass_through()
        assert wakes.acquire(timeout=15)  # the liveness check failed, it listened anew (and woke)
        with direct.begin() as connection:
            connection.execute(text(f"NOTIFY {outbox_wake.CHANNEL}"))
        assert wakes.acquire(timeout=10)
    finally:
        stop.set()
        listener.join(timeout=10)
        engine.dispose()
        direct.dispose()
