"""When the inbox cannot store, SMTP says `451 4.3.0` and keeps nothing; when it can again, `250`.

The faults are real: PostgreSQL reached through a TCP proxy that the test closes and reopens,
and a SQLite file another connection holds locked. Also here: group commit while the database
is busy, and the daemon's shutdown (what SIGTERM triggers) with sessions in every state.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gateway.domain import Envelope
from gateway.intake.smtp import SmtpLimits
from gateway.intake.writer import InboxWriter
from gateway.store.db import make_engine
from gateway.store.inbox import InboxStore
from gateway.store.schema import upgrade
from tests.conftest import missing_component
from tests.integration.smtp_helpers import TcpProxy, ThreadedIntake, make_mail, proxied, queued_id

POSTGRES_ENV = "TICKETGATE_TEST_POSTGRES_URL"
LIMITS = SmtpLimits(host="127.0.0.1", port=0, command_timeout=30.0, data_timeout=30.0)


def send(running: ThreadedIntake, raw: bytes) -> tuple[int, bytes]:
    """One mail in one session; the DATA reply. Closes without QUIT: during a shutdown the
    server may already have said 421 after its 250, and that is not this helper's concern."""
    client = smtplib.SMTP(running.host, running.port, timeout=60)
    try:
        client.ehlo("client.test")
        client.mail("customer@example.org")
        client.rcpt("support@smilepass.example")
        return client.data(raw)
    finally:
        client.close()


# --- PostgreSQL behind a proxy ------------------------------------------------------------------


@pytest.fixture
def postgres_db() -> Iterator[tuple[str, str]]:
    """A fresh database of its own (admin URL, database name), dropped afterwards."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        missing_component(f"PostgreSQL: set {POSTGRES_ENV}=postgresql+psycopg://...")
        return
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    name = f"tg_smtp_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        missing_component(f"PostgreSQL at {POSTGRES_ENV} cannot create a database: {exc}")
        return
    try:
        yield url, name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_unreachable_gives_451_then_recovers(
    postgres_db: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    admin_url, name = postgres_db
    target = make_url(admin_url)
    direct = target.set(database=name)
    schema_engine = make_engine(direct.render_as_string(hide_password=False))
    upgrade(schema_engine)
    schema_engine.dispose()

    with proxied(target.host or "127.0.0.1", target.port or 5432) as proxy:
        through_proxy = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = make_engine(through_proxy)
        inbox = InboxStore(engine)
        try:
            with ThreadedIntake(inbox, LIMITS) as running, caplog.at_level(logging.INFO):
                before = make_mail("before the outage", "works", message_id="before@example.org")
                code, reply = send(running, before)
                assert code == 250

                proxy.close()  # the database is gone: connections cut, port refusing
                during = make_mail("during the outage", "must not be lost", message_id="during@example.org")
                for _attempt in range(3):
                    code, reply = send(running, during)
                    assert (code, reply[:5]) == (451, b"4.3.0")

                proxy.open()  # back, on the same address
                code, reply = send(running, during)  # the sender's retry
                assert code == 250
                during_id = queued_id(reply)
        finally:
            engine.dispose()

    check = make_engine(direct.render_as_string(hide_password=False))
    try:
        stored = InboxStore(check).summaries()
        assert len(stored) == 2  # nothing lost, nothing stored twice by the 451s
        found = InboxStore(check).get(during_id)
        assert found is not None and found[1] == during
    finally:
        check.dispose()
    outage_lines = [r for r in caplog.records if "inbox unavailable" in r.getMessage()]
    recovery_lines = [r for r in caplog.records if "inbox recovered" in r.getMessage()]
    assert (len(outage_lines), len(recovery_lines)) == (1, 1)  # one outage, logged once


# --- SQLite locked by another writer ------------------------------------------------------------


def sqlite_engine(path: Path, busy_timeout_ms: int) -> Engine:
    """make_engine's SQLite engine with a shorter lock wait, so a held lock becomes a 451 quickly."""
    return make_engine(f"sqlite:///{path}", sqlite_busy_timeout=busy_timeout_ms / 1000)


class HeldLock:
    """Another process's writer: `BEGIN EXCLUSIVE` on the same file until released."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self._connection.execute("ROLLBACK")
        self._connection.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "ticketgate.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def test_sqlite_locked_gives_451_then_250_when_released(db_path: Path) -> None:
    engine = sqlite_engine(db_path, busy_timeout_ms=200)
    inbox = InboxStore(engine)
    raw = make_mail("while locked", "retry me", message_id="locked@example.org")
    try:
        with ThreadedIntake(inbox, LIMITS) as running:
            lock = HeldLock(db_path)
            try:
                code, reply = send(running, raw)
            finally:
                lock.release()
            assert (code, reply[:5]) == (451, b"4.3.0")
            assert inbox.summaries() == []

            code, reply = send(running, raw)
            assert code == 250
        found = inbox.get(queued_id(reply))
        assert found is not None and found[1] == raw
        assert len(inbox.summaries()) == 1
    finally:
        engine.dispose()


# --- group commit -------------------------------------------------------------------------------


def test_writer_batches_mails_that_arrive_during_a_commit(db_path: Path) -> None:
    """Given a commit stuck on the write lock, the mails arriving meanwhile join it once it has the
    lock (its batch is taken then, so none waits for the lock twice), 64 at most; the rest share
    the next commit. (Before issue 24 the batch was taken before the wait: [m0], then m1..m64,
    then m65..m70.)"""
    engine = make_engine(f"sqlite:///{db_path}")  # 30 s lock wait: the first commit waits, not fails
    inbox = InboxStore(engine)

    async def scenario() -> tuple[list[int], int]:
        async with InboxWriter(inbox, max_batch_mails=64) as writer:
            lock = HeldLock(db_path)
            envelope = Envelope("customer@example.org", ("support@smilepass.example",), "smtp")
            first = asyncio.create_task(writer.store(make_mail("m0", "first"), envelope))
            await asyncio.sleep(0.2)  # the first batch is now in flight, waiting on the lock
            rest = [
                asyncio.create_task(writer.store(make_mail(f"m{n}", "queued"), envelope))
                for n in range(1, 71)
            ]
            await asyncio.sleep(0.2)
            assert not first.done()  # no reply before the commit
            await asyncio.to_thread(lock.release)
            ids = await asyncio.gather(first, *rest)
            return ids, writer.committed_batches

    try:
        ids, batches = asyncio.run(scenario())
        assert len(set(ids)) == 71
        assert batches == 2  # m0..m63 once the lock was free, then m64..m70
        stored = inbox.summaries()
        assert sorted(ids) == [item.id for item in stored]
        for mail_number, inbox_id in enumerate(ids):
            found = inbox.get(inbox_id)
            assert found is not None and f"Subject: m{mail_number}\r\n".encode() in found[1]
    finally:
        engine.dispose()


def test_writer_fails_every_mail_of_a_failed_batch(db_path: Path) -> None:
    engine = sqlite_engine(db_path, busy_timeout_ms=300)
    inbox = InboxStore(engine)

    async def scenario() -> list[BaseException | int]:
        async with InboxWriter(inbox) as writer:
            envelope = Envelope("customer@example.org", ("support@smilepass.example",), "smtp")
            lock = HeldLock(db_path)
            try:
                tasks = [writer.store(make_mail(f"m{n}", "x"), envelope) for n in range(5)]
                return await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                lock.release()

    try:
        results = asyncio.run(scenario())
        assert all(type(result).__name__ == "TransientError" for result in results), results
        assert inbox.summaries() == []
    finally:
        engine.dispose()


# --- shutdown -----------------------------------------------------------------------------------


def test_shutdown_lets_data_finish_and_tells_the_others_421(db_path: Path) -> None:
    """Given one client whose mail is being committed and one idle in a transaction, when the
    daemon stops (SIGTERM), then the first gets its 250, the second 421, and new ones are refused."""
    engine = make_engine(f"sqlite:///{db_path}")
    inbox = InboxStore(engine)
    raw = make_mail("sent just before shutdown", "keep me", message_id="last@example.org")
    running = ThreadedIntake(inbox, LIMITS).start()
    try:
        idle = smtplib.SMTP(running.host, running.port, timeout=30)
        idle.ehlo("idle.test")
        idle.mail("customer@example.org")
        idle.rcpt("support@smilepass.example")

        lock = HeldLock(db_path)  # the commit of the next mail waits on this
        result: dict[str, Any] = {}

        def deliver() -> None:
            client = smtplib.SMTP(running.host, running.port, timeout=60)
            try:
                client.ehlo("client.test")
                client.mail("customer@example.org")
                client.rcpt("support@smilepass.example")
                result["reply"] = client.data(raw)
                result["after"] = client.docmd("MAIL", "FROM:<customer@example.org>")
            finally:
                client.close()

        sender = threading.Thread(target=deliver)
        sender.start()
        _wait_until(lambda: running.server is not None and running.server.transactions_in_data == 1)
        time.sleep(0.2)  # the DATA body is in, the commit is waiting on the lock

        stopping = running.stop_in_background(grace=20)
        code, reply = idle.docmd("DATA")  # the idle client's next command
        assert (code, reply[:5]) == (421, b"4.3.2")
        idle.close()
        with pytest.raises(ConnectionRefusedError):
            smtplib.SMTP(running.host, running.port, timeout=5)
        assert not stopping.done()  # still waiting for the mail in DATA

        lock.release()
        sender.join(timeout=30)
        stopping.result(timeout=30)
        code, reply = result["reply"]
        assert code == 250
        assert result["after"][0] == 421  # and then it is told the server is going away
        found = inbox.get(queued_id(reply))
        assert found is not None and found[1] == raw
        assert len(inbox.summaries()) == 1
    finally:
        running.close()
        engine.dispose()


def test_shutdown_grace_expiry_closes_data_without_a_250(db_path: Path) -> None:
    """A mail whose commit outlasts the grace period gets no `250` (the sender will retry)."""
    engine = make_engine(f"sqlite:///{db_path}")
    inbox = InboxStore(engine)
    running = ThreadedIntake(inbox, LIMITS).start()
    lock: HeldLock | None = HeldLock(db_path)
    try:
        client = smtplib.SMTP(running.host, running.port, timeout=30)
        client.ehlo("client.test")
        client.mail("customer@example.org")
        client.rcpt("support@smilepass.example")
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(make_mail("slow", "commit") + b".\r\n")
        _wait_until(lambda: running.server is not None and running.server.transactions_in_data == 1)
        time.sleep(0.2)

        started = time.monotonic()
        stopping = running.stop_in_background(grace=0.5)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.getreply()
        client.close()
        assert time.monotonic() - started < 5
        assert lock is not None
        lock.release()
        lock = None
        stopping.result(timeout=30)
    finally:
        if lock is not None:
            lock.release()
        running.close()
        engine.dispose()


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_proxy_really_refuses_when_closed() -> None:
    """The outage is real: the proxied port refuses connections while closed."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    try:
        proxy = TcpProxy("127.0.0.1", server.getsockname()[1])
        proxy.open()
        port = proxy.port
        proxy.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        proxy.open()
        assert proxy.port == port
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        proxy.close()
    finally:
        server.close()
