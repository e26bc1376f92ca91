"""Node heartbeats (SPEC §9): each `serve` registers a row and beats it every few seconds; a claim
whose node stopped beating is taken over by another node without waiting for its lease.

`list_nodes` is what `ticketgate status` shows; `node_is_live` is the condition the inbox and
outbox claims use to tell a held claim from an orphaned one. A node never takes over its own
claims (`orphaned` leaves them out), and a node whose own heartbeat the others would call dead
claims nothing until it beats again (`require_live`): whatever it claimed then would be free to
them at once, and it would send or process it side by side with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, bindparam, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from gateway.store.db import make_session_factory, unit_of_work
from gateway.store.models import Node, utcnow

BEAT_SECONDS = 5.0
# A node that has not beaten for this long is dead: its claims go to the others. Several beats,
# so a node slowed by a busy machine or a slow commit keeps what it holds.
DEAD_AFTER = timedelta(seconds=20)
# Rows of nodes gone this long are deleted when a node starts, so the table stays one screen.
FORGET_AFTER = timedelta(days=7)

_nodes = Node.__table__


@dataclass(frozen=True)
class NodeInfo:
    """One run of `serve`, as operators see it."""

    id: int
    name: str
    host: str
    pid: int
    started_at: datetime
    last_beat: datetime
    stopped_at: datetime | None
    live: bool


def node_is_live(node_column: ColumnElement[int | None], now: datetime) -> ColumnElement[bool]:
    """SQL: the node named in `node_column` beat within `DEAD_AFTER` and has not stopped."""
    return beat_since(node_column, now - DEAD_AFTER)


def beat_since(
    node_column: ColumnElement[int | None], since: datetime | ColumnElement[datetime]
) -> ColumnElement[bool]:
    """SQL: the node named in `node_column` beat at `since` or later and has not stopped. `since`
    may be a bound parameter, for a statement built once (the inbox claim) rather than per call."""
    return exists().where(
        _nodes.c.id == node_column,
        _nodes.c.stopped_at.is_(None),
        _nodes.c.last_beat >= since,
    )


def orphaned(
    node_column: ColumnElement[int | None], now: datetime, *, me: int | None = None
) -> ColumnElement[bool]:
    """SQL: the claim names a node, that node is dead or stopped, and it is not `me` (a live node
    that finds its own row stale has not died: what it holds is still its own to finish)."""
    return orphaned_since(node_column, now - DEAD_AFTER, me=me)


def orphaned_since(
    node_column: ColumnElement[int | None],
    since: datetime | ColumnElement[datetime],
    *,
    me: int | ColumnElement[int] | None = None,
) -> ColumnElement[bool]:
    """`orphaned`, for a node dead when it has not beaten since `since`; `since` and `me` may be
    bound parameters (see `beat_since`)."""
    condition = node_column.is_not(None) & ~beat_since(node_column, since)
    return condition if me is None else condition & (node_column != me)


# Built once: every claim of a `serve` node asks it (a statement built per call costs more than it).
_OWN_BEAT = select(_nodes.c.last_beat, _nodes.c.stopped_at).where(_nodes.c.id == bindparam("own_node"))


class OwnHeartbeatStale(Exception):
    """This node's own heartbeat is older than `DEAD_AFTER` (a slow disk, a long transaction, a
    database fail-over): the other nodes may take over what it claims, so it claims nothing until
    it beats again. Not a fault of the database; the claimer waits and says so once."""

    def __init__(self, node_id: int, last_beat: datetime | None, now: datetime) -> None:
        age = "never" if last_beat is None else f"{(now - last_beat).total_seconds():.0f}s ago"
        super().__init__(f"node {node_id}'s own heartbeat is stale (last beat {age})")
        self.node_id = node_id


def require_live(session: Session, node_id: int | None, now: datetime) -> None:
    """Raise OwnHeartbeatStale unless `node_id` (None: no node, nothing to check) beat within
    `DEAD_AFTER` and has not stopped, as the other nodes judge it. One primary-key read, in the
    claim's own transaction."""
    if node_id is None:
        return
    row = session.execute(_OWN_BEAT, {"own_node": node_id}).first()
    if row is None or row.stopped_at is not None or row.last_beat < now - DEAD_AFTER:
        raise OwnHeartbeatStale(node_id, None if row is None else row.last_beat, now)


def register(engine: Engine, *, name: str, host: str, pid: int) -> int:
    """A new row for this run of `serve`; returns its id (what its claims record)."""
    now = utcnow()
    with unit_of_work(make_session_factory(engine)) as session:
        # A restart replaces the row of its own earlier run (stopped, or dead past DEAD_AFTER: its
        # claims are free either way, and a missing node frees them the same), so the table keeps one
        # row per node; other nodes' rows go once they have been gone for FORGET_AFTER.
        gone = (_nodes.c.stopped_at.is_not(None)) | (_nodes.c.last_beat < now - DEAD_AFTER)
        session.execute(
            delete(_nodes).where(
                ((_nodes.c.name == name[:200]) & gone) | (_nodes.c.last_beat < now - FORGET_AFTER)
            )
        )
        result = session.execute(
            insert(_nodes).values(
                name=name[:200], host=host[:255], pid=pid, started_at=now, last_beat=now, stopped_at=None
            )
        )
        (node_id,) = result.inserted_primary_key  # type: ignore[misc]
        return int(node_id)


def beat(engine: Engine, node_id: int) -> None:
    """This node is alive now."""
    with unit_of_work(make_session_factory(engine)) as session:
        session.execute(update(_nodes).where(_nodes.c.id == node_id).values(last_beat=utcnow()))


def stopped(engine: Engine, node_id: int) -> None:
    """This node stopped cleanly: whatever it still names is free at once."""
    with unit_of_work(make_session_factory(engine)) as session:
        now = utcnow()
        session.execute(update(_nodes).where(_nodes.c.id == node_id).values(last_beat=now, stopped_at=now))


def list_nodes(session: Session, *, now: datetime | None = None) -> list[NodeInfo]:
    """Every node that ran within `FORGET_AFTER`, the latest start first, with whether it is live."""
    now = now or utcnow()
    rows = session.execute(select(_nodes).order_by(_nodes.c.started_at.desc(), _nodes.c.id.desc()))
    return [
        NodeInfo(
            id=row.id,
            name=row.name,
            host=row.host,
            pid=row.pid,
            started_at=row.started_at,
            last_beat=row.last_beat,
            stopped_at=row.stopped_at,
            live=row.stopped_at is None and row.last_beat >= now - DEAD_AFTER,
        )
        for row in rows
    ]
