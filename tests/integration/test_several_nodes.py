"""Three `serve` nodes on one PostgreSQL (SPEC §9), one of them SIGKILLed half-way through 1,500 mails.

What a user of the deployment would observe: every mail that got `250` is exactly one ticket; mail
refused by the dying node is sent again to another node and not lost; what the dead node had
claimed is taken over within a minute; every notification reaches the relay (a real SMTP sink),
at most the documented few twice; an IMAP mailbox fed during the run makes one ticket per message;
auto-close closes an old Resolved ticket once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from gateway.notify.sender import SETTLE_EVERY
from gateway.store.db import make_engine
from tests.helpers import ServeProcess, free_port, make_mail, ticketgate, write_config
from tests.integration.dovecot import PASSWORD, Dovecot, running_dovecot
from tests.integration.smtp_sink import SmtpSink

MAILS = int(os.environ.get("TICKETGATE_NODES_MAILS", "1500"))
SENDER_THREADS = 6
IMAP_MAILS = 20
TAKEOVER_LIMIT_SECONDS = 60.0
# A node that dies between handing mail to the relay and recording it sends those again: at most
# one settle batch per node killed (gateway/notify/sender.py, docs/operations/several-nodes.md).
RESENT_AT_MOST_PER_DEAD_NODE = SETTLE_EVERY


@pytest.fixture
def engine(fresh_postgres: str) -> Iterator[Engine]:
    """The test's own look into the nodes' database."""
    engine = make_engine(fresh_postgres)
    yield engine
    engine.dispose()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def node_config(
    node_dir: Path, database_url: str, *, name: str, port: int, sink: SmtpSink, imap: int
) -> Path:
    """The same deployment config for every node but its name and SMTP port; blobs in the database."""
    node_dir.mkdir()
    config = write_config(
        node_dir,
        database_url,
        listen=f"127.0.0.1:{port}",
        extra=f"""
[[imap]]
host = "127.0.0.1"
port = {imap}
tls = "none"
username = "support"
password = "{PASSWORD}"
""",
    )
    body = config.read_text(encoding="utf-8")
    body = body.replace(f'relay = "dir:{node_dir / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"')
    body = body.replace(f'blob_dir = "{node_dir / "blobs"}"', "")  # PostgreSQL: the database store
    body = body.replace('ticket_prefix = "SP"', f'ticket_prefix = "SP"\nnode_name = "{name}"')
    config.write_text(body, encoding="utf-8")
    return config


class Client:
    """Sends each mail to one node after another until one answers `250` (as a sending MTA would)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.accepted: dict[int, int] = {}  # mail number → port that said 250
        self.refusals = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []

    def send(self, number: int, raw: bytes, sender: str) -> None:
        for attempt in range(60):
            port = self.ports[(number + attempt) % len(self.ports)]
            try:
                self._connection(port).sendmail(sender, ["support@smilepass.example"], raw)
            except (OSError, smtplib.SMTPException):
                self._drop(port)
                with self._lock:
                    self.refusals += 1
                if attempt >= len(self.ports):
                    time.sleep(0.2)
                continue
            with self._lock:
                self.accepted[number] = port
            return
        raise AssertionError(f"mail {number} was refused by every node for too long")

    def close(self) -> None:
        """Close every thread's connections (their threads are done by now)."""
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.quit()
            connection.close()

    def _connection(self, port: int) -> smtplib.SMTP:
        connections: dict[int, smtplib.SMTP] = self._local.__dict__.setdefault("connections", {})
        if port not in connections:
            connections[port] = smtplib.SMTP("127.0.0.1", port, timeout=30)
            with self._lock:
                self._all.append(connections[port])
        return connections[port]

    def _drop(self, port: int) -> None:
        connection = self._local.__dict__.setdefault("connections", {}).pop(port, None)
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, state: Callable[[], object] = lambda: ""
) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout:.0f}s: {what} {state()}")


def queue_state(engine: Engine) -> dict[str, object]:
    """What is left where, for a failure message."""
    return {
        "inbox": rows(engine, "SELECT state, outcome, claimed_node, count(*) FROM inbox GROUP BY 1, 2, 3"),
        "outbox": rows(engine, "SELECT status, claimed_node, count(*) FROM outbox GROUP BY 1, 2"),
        "tickets": scalar(engine, "SELECT count(*) FROM tickets"),
        "nodes": rows(engine, "SELECT name, last_beat, stopped_at FROM nodes"),
    }


def make_resolved_ticket_old(engine: Engine, ticket_id: int) -> None:
    """A ticket Resolved 30 days ago with no mail since: auto-close's to close."""
    long_ago = "now() - interval '30 days'"
    with engine.begin() as connection:
        connection.execute(text("UPDATE tickets SET status = 'Resolved' WHERE id = :id"), {"id": ticket_id})
        connection.execute(
            text(
                "INSERT INTO events (ticket_id, kind, field, old, new, actor, created_at) "
                "VALUES (:id, 'status_changed', 'status', 'Open', 'Resolved', 'ana@smilepass.example', "
                f"{long_ago})"
            ),
            {"id": ticket_id},
        )
        connection.execute(
            text(f"UPDATE messages SET created_at = {long_ago} WHERE ticket_id = :id"), {"id": ticket_id}
        )


@pytest.mark.timeout(400)
def test_three_nodes_one_killed_half_way_lose_and_double_nothing(
    fresh_postgres: str, engine: Engine, tmp_path: Path, dovecot: Dovecot
) -> None:
    with SmtpSink() as sink:
        names = ["node-a", "node-b", "node-c"]
        ports = [free_port() for _ in names]
        configs = [
            node_config(tmp_path / name, fresh_postgres, name=name, port=port, sink=sink, imap=dovecot.port)
            for name, port in zip(names, ports, strict=True)
        ]
        assert ticketgate("db", "upgrade", config=configs[0]).returncode == 0

        # Before the run: an old Resolved ticket for auto-close, made the way any ticket is.
        old_mail = tmp_path / "old.eml"
        old_mail.write_bytes(make_mail("Old resolved question", sender="Old <old@customer.example>"))
        assert ticketgate("ingest", str(old_mail), config=configs[0]).returncode == 0
        old_ticket = scalar(engine, "SELECT id FROM tickets WHERE title = 'Old resolved question'")
        make_resolved_ticket_old(engine, old_ticket)

        nodes = [
            ServeProcess(["--config", str(config)], config.parent, port, own_group=True)
            for config, port in zip(configs, ports, strict=True)
        ]
        live = dict(zip(names, nodes, strict=True))
        stop_feeding = threading.Event()
        try:
            wait_for(
                lambda: scalar(engine, "SELECT count(*) FROM nodes WHERE stopped_at IS NULL") == 3,
                30,
                "3 nodes",
            )

            # The node that holds the mailbox is the one that does not stand by; kill that one, so
            # the IMAP poller and (started first, so most likely) the scheduler must move too.
            def standing_by() -> list[str]:
                return [name for name in names if "standing by" in live[name].output()]

            wait_for(lambda: len(standing_by()) == 2, 30, "two nodes standing by for the mailbox")
            holders = [name for name in names if name not in standing_by()]
            victim = holders[0]
            victim_id = scalar(
                engine, "SELECT max(id) FROM nodes WHERE name = :name AND stopped_at IS NULL", name=victim
            )

            client = Client(ports)
            imap_fed: list[str] = []

            def feed_imap() -> None:
                for n in range(IMAP_MAILS):
                    subject = f"IMAP mail {n:02d}"
                    dovecot.append(make_mail(subject, sender=f"Imap {n} <imap{n}@customer.example>"))
                    imap_fed.append(subject)
                    if stop_feeding.wait(0.5):
                        return

            feeder = threading.Thread(target=feed_imap, name="imap-feeder")
            feeder.start()
            killed = threading.Event()
            claims_at_kill: dict[str, list[int]] = {}
            killed_at = [0.0]

            def send(number: int) -> None:
                sender = f"customer{number}@customer.example"
                raw = make_mail(
                    f"Several nodes mail {number:04d}",
                    sender=f"Customer {number} <{sender}>",
                    message_id=make_msgid(idstring=f"n{number}", domain="customer.example"),
                )
                client.send(number, raw, sender)
                if number == MAILS // 2 and not killed.is_set():
                    killed.set()
                    # Half-way, at a moment the victim holds claimed mail (its worker claims in
                    # batches; on a busy machine it may be between two for a moment).
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline and not scalar(
                        engine,
                        "SELECT count(*) FROM inbox WHERE state = 'processing' AND claimed_node = :node",
                        node=victim_id,
                    ):
                        time.sleep(0.01)
                    live[victim].kill_group()
                    killed_at[0] = time.monotonic()
                    watcher.start()
                    claims_at_kill["inbox"] = [
                        row.id
                        for row in rows(
                            engine,
                            "SELECT id FROM inbox WHERE state = 'processing' AND claimed_node = :node",
                            node=victim_id,
                        )
                    ]
                    claims_at_kill["outbox"] = [
                        row.id
                        for row in rows(
                            engine,
                            "SELECT id FROM outbox WHERE status IN ('queued', 'retry') "
                            "AND claimed_node = :node",
                            node=victim_id,
                        )
                    ]

            # The dead node's claims are taken over once its heartbeat is old, not after a lease.
            def claims_held_by_victim() -> int:
                return int(
                    scalar(
                        engine,
                        "SELECT count(*) FROM inbox WHERE claimed_node = :node AND state = 'processing'",
                        node=victim_id,
                    )
                    + scalar(
                        engine,
                        "SELECT count(*) FROM outbox WHERE claimed_node = :node "
                        "AND status IN ('queued', 'retry')",
                        node=victim_id,
                    )
                )

            takeover_seconds: list[float] = []

            def watch_takeover() -> None:
                deadline = time.monotonic() + 2 * TAKEOVER_LIMIT_SECONDS
                while time.monotonic() < deadline:
                    if claims_held_by_victim() == 0:
                        takeover_seconds.append(time.monotonic() - killed_at[0])
                        return
                    time.sleep(0.2)

            watcher = threading.Thread(target=watch_takeover, name="takeover-watcher")
            started = time.monotonic()
            with ThreadPoolExecutor(SENDER_THREADS) as pool:
                list(pool.map(send, range(MAILS)))
            client.close()
            sent_in = time.monotonic() - started
            feeder.join()
            client.ports = [port for name, port in zip(names, ports, strict=True) if name != victim]

            watcher.join()
            expected_tickets = MAILS + IMAP_MAILS + 1

            def all_done() -> bool:
                return (
                    scalar(engine, "SELECT count(*) FROM inbox WHERE state IN ('pending', 'processing')") == 0
                    and scalar(engine, "SELECT count(*) FROM tickets") >= expected_tickets
                    and scalar(engine, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == 0
                    and scalar(engine, "SELECT count(*) FROM events WHERE kind = 'auto_closed'") >= 1
                )

            wait_for(
                all_done, 240, "every mail processed and every notification sent", lambda: queue_state(engine)
            )
            done_in = time.monotonic() - started
        finally:
            stop_feeding.set()
            exits = {name: node.stop() for name, node in live.items() if node.process.poll() is None}
        logs = {name: node.output() for name, node in live.items()}
        assert all(code == 0 for code in exits.values()), {n: logs[n][-3000:] for n in exits}
        assert len(exits) == 2

        # Every mail got its 250 from some node (those refused by the dying node went elsewhere) ...
        assert sorted(client.accepted) == list(range(MAILS))
        assert any(port == live[victim].port for port in client.accepted.values())
        # ... and is exactly one ticket.
        titles = collections.Counter(
            row.title
            for row in rows(engine, "SELECT title FROM tickets WHERE title LIKE 'Several nodes mail %'")
        )
        assert len(titles) == MAILS and set(titles.values()) == {1}
        # Each IMAP message: one inbox row (never fetched by two nodes) and one ticket.
        imap_rows = collections.Counter(
            row.subject
            for row in rows(
                engine, "SELECT t.title AS subject FROM tickets t WHERE t.title LIKE 'IMAP mail %'"
            )
        )
        assert sorted(imap_rows) == sorted(imap_fed) and set(imap_rows.values()) == {1}
        assert scalar(engine, "SELECT count(*) FROM inbox WHERE source LIKE 'imap:%'") == len(imap_fed)
        assert scalar(engine, "SELECT count(*) FROM inbox WHERE state = 'quarantined'") == 0

        # The dead node had mail claimed, and it was taken over within a minute.
        assert claims_at_kill["inbox"], "the killed node held no claimed mail: nothing was shown"
        assert takeover_seconds and takeover_seconds[0] < TAKEOVER_LIMIT_SECONDS

        # Auto-close ran once: one event, one status_changed notification.
        assert scalar(engine, "SELECT count(*) FROM events WHERE kind = 'auto_closed'") == 1
        assert scalar(engine, "SELECT status FROM tickets WHERE id = :id", id=old_ticket) == "Closed"
        status_mails = rows(
            engine,
            "SELECT message_id FROM outbox WHERE ticket_id = :id AND template = 'status_changed'",
            id=old_ticket,
        )
        assert len(status_mails) == 1

        # Every notification reached the sink; at most one settle batch of the dead node twice.
        outbox_ids = {row.message_id.strip("<>") for row in rows(engine, "SELECT message_id FROM outbox")}
        delivered = collections.Counter(str(mail.message["Message-ID"]).strip("<>") for mail in sink.captured)
        assert outbox_ids <= set(delivered)
        assert set(delivered) <= outbox_ids
        twice = {message_id: n for message_id, n in delivered.items() if n > 1}
        assert all(n == 2 for n in twice.values())
        assert len(twice) <= RESENT_AT_MOST_PER_DEAD_NODE
        assert delivered[status_mails[0].message_id.strip("<>")] >= 1

        print(
            f"\n{MAILS} mails over 3 nodes accepted in {sent_in:.1f}s, all processed and notified in "
            f"{done_in:.1f}s; {client.refusals} refusals retried elsewhere; "
            f"{len(claims_at_kill['inbox'])} inbox and {len(claims_at_kill['outbox'])} outbox claims of "
            f"{victim} taken over {takeover_seconds[0]:.1f}s after the kill; {len(delivered)} notifications, "
            f"{len(twice)} sent twice"
        )
