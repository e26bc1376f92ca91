"""What the operator sees at a glance: one read of the store, shared by `ticketgate status`, the
store gauges of /metrics and the daemon's systemd `STATUS=` line, so all three tell the same story.

Reads go through an engine of their own (`read_engine`): on SQLite the daemon's engine begins
every transaction IMMEDIATE (it takes the write lock), and a scrape or a status call must not
queue behind mail intake for a few counts; WAL lets plain readers run beside the writers.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import TransientError
from gateway.store.db import make_engine, make_session_factory
from gateway.store.models import ImapCheckpoint, ImapPoll, InboxItem, OutboxRow, UndeliverableAddress, utcnow
from gateway.store.outbox import DUE_STATUSES
from gateway.store.write_probe import probe_write

PENDING_STATES = ("pending", "processing")
NODES_TABLE = "nodes"  # written by the node heartbeats (SPEC §9); shown when it exists


def read_engine(url: str, reply_timeout: float | None = None) -> Engine:
    """An engine for reading only: plain (deferred) transactions on SQLite, a small pool elsewhere.
    `reply_timeout` (`database.reply_timeout`): a PostgreSQL that stops answering makes `status`
    and `/readyz` say so after that long instead of hanging (gateway/store/pg_connection.py).
    Pinged at every checkout, unlike the daemon's hot engines (store/db.py `_ping_when_idle`): a
    probe is rare, and what it reports should be why the database is away ("database … does not
    exist"), found on a fresh connection, not the death of the one it used a moment ago."""
    if make_url(url).get_backend_name() == "sqlite":
        return create_engine(url, connect_args={"timeout": 5.0})
    return make_engine(
        url, pool_size=1, max_overflow=1, connect_timeout=5, reply_timeout=reply_timeout, pool_pre_ping=True
    )


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    inbox: dict[str, int]  # by state: pending, processing, done, quarantined
    oldest_pending_at: datetime | None  # received_at of the oldest mail not yet processed
    outbox: dict[str, int]  # by status: queued, retry, sent, failed, dead, bounced
    outbox_due_now: int
    oldest_due_at: datetime | None  # next_attempt_at of the oldest notification waiting to go
    undeliverable: list[dict[str, Any]] = field(default_factory=list)
    imap: list[dict[str, Any]] = field(default_factory=list)
    imap_polls: dict[str, dict[str, Any]] = field(default_factory=dict)  # by account name
    nodes: list[dict[str, Any]] | None = None  # None: this database has no heartbeats table

    @property
    def pending(self) -> int:
        return sum(self.inbox.get(state, 0) for state in PENDING_STATES)

    @property
    def quarantined(self) -> int:
        return self.inbox.get("quarantined", 0)

    def oldest_pending_seconds(self) -> float:
        if self.oldest_pending_at is None:
            return 0.0
        return max(0.0, (self.taken_at - self.oldest_pending_at).total_seconds())


def check_database(engine: Engine) -> None:
    """Raise TransientError naming the fault unless the database answers a query now."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TransientError(f"database unavailable: {exc.__class__.__name__}: {first}") from exc


def counts(engine: Engine) -> Snapshot:
    """The queue counts only (the cheap part, for /metrics and STATUS=)."""
    return snapshot(engine, details=False)


def snapshot(engine: Engine, *, details: bool = True) -> Snapshot:
    """One consistent-enough read of the queues; TransientError when the database does not answer."""
    now = utcnow()
    try:
        with engine.connect() as connection:
            inbox = {
                state: int(n)
                for state, n in connection.execute(
                    select(InboxItem.state, func.count()).group_by(InboxItem.state)
                )
            }
            oldest_pending = connection.execute(
                select(func.min(InboxItem.received_at)).where(InboxItem.state.in_(PENDING_STATES))
            ).scalar()
            outbox = {
                status: int(n)
                for status, n in connection.execute(
                    select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
                )
            }
            due = OutboxRow.status.in_(DUE_STATUSES)
            due_now = connection.execute(
                select(func.count()).select_from(OutboxRow).where(due, OutboxRow.next_attempt_at <= now)
            ).scalar()
            oldest_due = connection.execute(select(func.min(OutboxRow.next_attempt_at)).where(due)).scalar()
            undeliverable: list[dict[str, Any]] = []
            imap: list[dict[str, Any]] = []
            imap_polls: dict[str, dict[str, Any]] = {}
            nodes: list[dict[str, Any]] | None = None
            if details:
                undeliverable = [
                    {"address": row.address, "reason": row.reason, "since": row.since}
                    for row in connection.execute(
                        select(UndeliverableAddress).order_by(UndeliverableAddress.since)
                    )
                ]
                imap = [
                    {
                        "account": row.account,
                        "folder": row.folder,
                        "last_uid": row.last_uid,
                        "last_taken_in_at": row.updated_at,
                    }
                    for row in connection.execute(
                        select(ImapCheckpoint).order_by(ImapCheckpoint.account, ImapCheckpoint.folder)
                    )
                ]
                imap_polls = {
                    row.account: {
                        "node": row.node,
                        "last_poll_at": _aware(row.last_poll_at),
                        "last_error": row.last_error,
                        "last_error_at": _aware(row.last_error_at),
                    }
                    for row in connection.execute(select(ImapPoll))
                }
                nodes = _nodes(connection)
    except SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TransientError(f"database unavailable: {exc.__class__.__name__}: {first}") from exc
    return Snapshot(
        taken_at=now,
        inbox=inbox,
        oldest_pending_at=_aware(oldest_pending),
        outbox=outbox,
        outbox_due_now=int(due_now or 0),
        oldest_due_at=_aware(oldest_due),
        undeliverable=undeliverable,
        imap=imap,
        imap_polls=imap_polls,
        nodes=nodes,
    )


def _nodes(connection: Any) -> list[dict[str, Any]] | None:
    """Each node's heartbeat row, as the heartbeat writer (SPEC §9) stores it; None without one.

    The hook for the heartbeats: this reads whatever columns the `nodes` table has (name, host,
    pid, started_at, last_beat …), so `status` shows them as soon as the table exists.
    """
    if not inspect(connection).has_table(NODES_TABLE):
        return None
    rows = connection.execute(text(f"SELECT * FROM {NODES_TABLE} ORDER BY started_at DESC")).mappings()
    # Raw SQL gives SQLite's times as text and PostgreSQL's without the column's zone: all UTC.
    return [{k: _aware(v) if k in _NODE_TIMES else v for k, v in row.items()} for row in rows]


_NODE_TIMES = frozenset({"started_at", "last_beat", "stopped_at"})


def _aware(moment: Any) -> datetime | None:
    """min() over a column comes back without the column's type: a naive datetime or, on SQLite, text."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port (the intake, when `serve` runs)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class WriteCheck:
    """Whether mail can be stored now (SPEC §15: a database that answers reads may refuse writes)."""

    ok: bool
    error: str | None = None  # why a test write failed
    since: str | None = None  # when `serve` found it could not write (from its /readyz), if it says


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
INTAKE_CANNOT_WRITE = "intake cannot write since "  # how /readyz words it (gateway/intake/writer.py)


def check_writes(engine: Engine, metrics_listen: tuple[str, int] | None) -> WriteCheck:
    """Try a write that leaves nothing behind (gateway/store/write_probe.py). When it fails and
    `serve`'s /readyz answers on `metrics_listen`, take from it since when intake cannot write."""
    try:
        probe_write(make_session_factory(engine))
    except TransientError as exc:
        return WriteCheck(False, " ".join(str(exc).split())[:500], _failing_since(metrics_listen))
    return WriteCheck(True)


def _failing_since(listen: tuple[str, int] | None) -> str | None:
    if listen is None:
        return None
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen[0], listen[0])
    url = f"http://{f'[{host}]' if ':' in host else host}:{listen[1]}/readyz"
    try:
        # Our own endpoint, never through a proxy the environment may name.
        with _NO_PROXY.open(url, timeout=2.0) as answer:
            body = answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as refused:  # 503: not ready, with the reasons
        body = refused.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    for line in body.splitlines():
        if line.startswith(INTAKE_CANNOT_WRITE):
            return line.removeprefix(INTAKE_CANNOT_WRITE).split(": ", 1)[0]
    return None
