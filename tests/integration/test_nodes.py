"""Node heartbeats and the takeover of a dead node's claims (SPEC §9), on SQLite and PostgreSQL;
the scheduler lock on PostgreSQL. The three-node run is tests/integration/test_several_nodes.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.daemon.runtime import Runtime, build_runtime
from gateway.daemon.scheduler import AutoCloser
from gateway.pipeline.processor import Outcome, Processor
from gateway.store import nodes
from gateway.store import outbox as outbox_store
from gateway.store.db import unit_of_work
from gateway.store.inbox import ClaimLostError, InboxOutcome, mark_held_inbox_done
from gateway.store.models import Node, utcnow
from tests.helpers import make_mail
from tests.integration.test_inbox_store import ENVELOPE, settings_for


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    built = build_runtime(settings_for(database_url, tmp_path))
    yield built
    built.close()


def other_node(runtime: Runtime, node_id: int) -> Runtime:
    """The same database as another node sees it: its own runtime, its own node id."""
    return build_runtime(runtime.settings, engine=runtime.engine, node_id=node_id)


def silence(runtime: Runtime, node_id: int, seconds: float) -> None:
    """Make the node's last heartbeat `seconds` old, as if it died then."""
    with unit_of_work(runtime.inbox.sessions) as session:
        session.execute(
            update(Node).where(Node.id == node_id).values(last_beat=utcnow() - timedelta(seconds=seconds))
        )


def test_nodes_register_beat_and_show_whether_they_live(runtime: Runtime) -> None:
    first = nodes.register(runtime.engine, name="node-a", host="host-1", pid=101)
    second = nodes.register(runtime.engine, name="node-b", host="host-2", pid=202)
    nodes.beat(runtime.engine, first)
    with unit_of_work(runtime.inbox.sessions) as session:
        listed = {node.name: node for node in nodes.list_nodes(session)}
    assert set(listed) == {"node-a", "node-b"}
    assert (listed["node-a"].host, listed["node-a"].pid, listed["node-a"].live) == ("host-1", 101, True)
    assert listed["node-a"].last_beat >= listed["node-a"].started_at

    silence(runtime, second, nodes.DEAD_AFTER.total_seconds() + 1)
    nodes.stopped(runtime.engine, first)
    with unit_of_work(runtime.inbox.sessions) as session:
        listed = {node.name: node for node in nodes.list_nodes(session)}
    assert listed["node-b"].live is False  # silent too long
    assert listed["node-a"].live is False and listed["node-a"].stopped_at is not None


def test_a_dead_nodes_inbox_claim_is_taken_over_long_before_its_lease_ends(runtime: Runtime) -> None:
    dead_id = nodes.register(runtime.engine, name="dead", host="h", pid=1)
    live_id = nodes.register(runtime.engine, name="live", host="h", pid=2)
    dead, live = other_node(runtime, dead_id), other_node(runtime, live_id)
    [inbox_id] = runtime.inbox.add_many([(make_mail("Claimed by a node that dies"), ENVELOPE)])

    [claimed] = dead.inbox.claim("dead:worker", lease=timedelta(minutes=5))
    assert claimed.id == inbox_id
    assert live.inbox.claim("live:worker") == []  # its node beats: the claim holds

    silence(runtime, dead_id, nodes.DEAD_AFTER.total_seconds() - 5)
    assert live.inbox.claim("live:worker") == []  # not yet dead
    silence(runtime, dead_id, nodes.DEAD_AFTER.total_seconds() + 1)
    [taken] = live.inbox.claim("live:worker")
    assert taken.id == inbox_id

    # The node that seemed dead cannot finish what was taken over: its transaction rolls back.
    with pytest.raises(ClaimLostError), unit_of_work(runtime.inbox.sessions) as session:
        mark_held_inbox_done(session, [InboxOutcome(inbox_id, "ticket", None, None)], worker="dead:worker")
    results = Processor(live.deps, worker="live:worker").process_one(taken)
    assert results.outcome is Outcome.TICKET
    summary, _raw = runtime.inbox.get(inbox_id) or (None, b"")
    assert summary is not None and (summary.state, summary.outcome) == ("done", "ticket")


def test_a_slow_worker_whose_claim_was_taken_over_does_not_make_a_second_ticket(runtime: Runtime) -> None:
    slow_id = nodes.register(runtime.engine, name="slow", host="h", pid=1)
    fast_id = nodes.register(runtime.engine, name="fast", host="h", pid=2)
    slow, fast = other_node(runtime, slow_id), other_node(runtime, fast_id)
    runtime.inbox.add_many([(make_mail("Processed by whoever holds it"), ENVELOPE)])
    [mine] = slow.inbox.claim("slow:worker")
    silence(runtime, slow_id, nodes.DEAD_AFTER.total_seconds() + 1)
    [theirs] = fast.inbox.claim("fast:worker")

    assert Processor(fast.deps, worker="fast:worker").process_one(theirs).outcome is Outcome.TICKET
    late = Processor(slow.deps, worker="slow:worker").process_one(mine)
    assert late.outcome is Outcome.RETRY and "taken over" in late.detail
    with unit_of_work(runtime.inbox.sessions) as session:
        from gateway.store import tickets as ticket_store

        assert len(ticket_store.queue(session)) == 1
    summary = runtime.inbox.summaries()[0]
    assert (summary.state, summary.outcome) == ("done", "ticket")


def test_a_claim_without_a_node_waits_for_its_lease(runtime: Runtime) -> None:
    """`ingest` names no node: only its lease frees its claim."""
    runtime.inbox.add_many([(make_mail("Piped in"), ENVELOPE)])
    assert runtime.inbox.claim("ingest:worker", lease=timedelta(minutes=5))
    live = other_node(runtime, nodes.register(runtime.engine, name="live", host="h", pid=2))
    assert live.inbox.claim("live:worker") == []


def test_a_dead_nodes_outbox_claim_is_due_again_at_once(runtime: Runtime) -> None:
    dead_id = nodes.register(runtime.engine, name="dead", host="h", pid=1)
    now = utcnow()
    with unit_of_work(runtime.inbox.sessions) as session:
        row = outbox_store.add(
            session,
            ticket_id=None,
            template="ticket_created",
            to_address="maria@customer.example",
            deadline=now + timedelta(hours=48),
            inbox_id=None,
            context={},
        )
        row_id = row.id
    with unit_of_work(runtime.inbox.sessions) as session:
        [claimed] = outbox_store.claim_due(
            session,
            worker="dead:sender",
            lease=timedelta(minutes=10),
            now=utcnow(),
            limit=16,
            node_id=dead_id,
        )
    assert claimed.id == row_id
    with unit_of_work(runtime.inbox.sessions) as session:
        assert (
            outbox_store.claim_due(
                session, worker="live:sender", lease=timedelta(minutes=10), now=now, limit=16
            )
            == []
        )
    silence(runtime, dead_id, nodes.DEAD_AFTER.total_seconds() + 1)
    with unit_of_work(runtime.inbox.sessions) as session:
        [again] = outbox_store.claim_due(
            session, worker="live:sender", lease=timedelta(minutes=10), now=utcnow(), limit=16
        )
    assert (again.id, again.attempts) == (row_id, 2)


def test_one_node_runs_the_scheduler_and_another_takes_over_when_it_dies(
    fresh_postgres: str, tmp_path: Path
) -> None:
    runtime = build_runtime(settings_for(fresh_postgres, tmp_path))
    try:
        first = AutoCloser(runtime.inbox.sessions, runtime.settings)
        second = AutoCloser(runtime.inbox.sessions, runtime.settings)
        held = first._lead(None)
        assert held is not None
        assert second._lead(None) is None  # another node has it
        held.release()  # as when that node's connection dies
        taken = second._lead(None)
        assert taken is not None
        taken.release()

        # The loop: a standby node asks again every `leader_retry` seconds and runs rounds once it leads.
        holder = first._lead(None)
        assert holder is not None
        stop = threading.Event()
        standby = threading.Thread(
            target=second.run, args=(stop,), kwargs={"interval": 0.1, "leader_retry": 0.1}
        )
        standby.start()
        try:
            stop.wait(0.5)
            holder.release()
            stop.wait(0.5)
            assert first._lead(None) is None  # the standby took it over
        finally:
            stop.set()
            standby.join()
    finally:
        runtime.close()
