"""The fault scenarios (SPEC §15, §9): each is a store, a number of nodes and a fault injected while
the client's mail is arriving. `run_scenario` builds the world (tests/faults/rig.py), injects the
fault once a third of the mail is in, and returns what a user and an operator observe afterwards.

The faults are real ones: the fault proxy (tests/faults/proxy.py) resetting, delaying or
swallowing every byte between the nodes and PostgreSQL; a private PostgreSQL stopped and started
(tests/faults/postgres.py); a small tmpfs under SQLite filled to the last byte; a node SIGSTOPped
past the 20 s after which the others take it for dead; the relay (the SMTP sink) answering `451`
to everything, or dropping its connection at a DATA, before and after taking the mail.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from gateway.notify.sender import SETTLE_EVERY
from tests.faults.postgres import PrivatePostgres
from tests.faults.proxy import FaultProxy
from tests.faults.rig import NOTIFICATIONS_PER_MAIL, TRIAGE, Client, Outcome, Rig

DISK_SIZE = "8m"


@dataclass
class World:
    """What a fault acts on."""

    rig: Rig
    proxy: FaultProxy | None = None
    postgres: PrivatePostgres | None = None
    disk: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    name: str
    store: str  # "postgres", "postgres-proxy" or "sqlite-disk"
    fault: Callable[[World], None]
    nodes: int = 1
    allowed_duplicates: int = 0  # deliveries beyond the first that the promise allows here
    extra_config: str = ""
    why: str = ""


# --- the faults ------------------------------------------------------------------------------


def proxy_cut(world: World) -> None:
    assert world.proxy is not None
    world.proxy.cut()
    time.sleep(3.0)
    world.proxy.pass_through()
    world.notes.append(f"proxy reset {world.proxy.refused} new connection(s) during the cut")


def proxy_delay(world: World) -> None:
    assert world.proxy is not None
    world.proxy.delay(2.0)
    time.sleep(8.0)
    world.proxy.pass_through()


def proxy_blackhole(world: World) -> None:
    assert world.proxy is not None
    world.proxy.blackhole()
    time.sleep(5.0)
    world.proxy.pass_through()


def database_restart(world: World) -> None:
    assert world.postgres is not None
    world.postgres.restart(down_seconds=2.0)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem says it is full; the file.

    Unbuffered, and ENOSPC taken around the whole `with`: a buffered file keeps the bytes a full
    disk refused and raises ENOSPC again when it is closed."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as handle:
        while True:
            handle.write(b"\0" * 65536)
    return filler


def disk_full(world: World) -> None:
    assert world.disk is not None
    filler = fill(world.disk)
    time.sleep(5.0)
    filler.unlink()


def stale_heartbeat(world: World) -> None:
    world.rig.pause(0)
    time.sleep(25.0)  # past DEAD_AFTER (20 s): the other node takes node0 for dead
    world.rig.resume(0)
    time.sleep(1.0)
    said = world.rig.nodes[0].output().count("own heartbeat is stale")
    world.notes.append(f"node0 stopped 25 s; it logged its own heartbeat stale {said} time(s) on waking")


def relay_refuses(world: World) -> None:
    """451 to every DATA for 5 s, and at least until one was refused (else the run proves nothing)."""
    sink = world.rig.sink
    before = sink.attempts
    sink.always(451)
    time.sleep(5.0)
    wait_until(lambda: sink.attempts > before, 30, "a DATA refused by the relay")
    sink.always(250)
    world.notes.append(f"relay answered 451 to {sink.attempts - before} DATA")


def relay_drops(world: World) -> None:
    """Two batches each lose their connection at a DATA: once before the relay took the mail, once
    after (the client cannot tell; that one mail goes again, SMTP's own at-least-once)."""
    sink = world.rig.sink
    now = sink.attempts
    sink.drop_at(now + 1, taken=False)
    sink.drop_at(now + 5, taken=True)
    wait_until(lambda: sink.attempts >= now + 5, 30, "both drops")
    world.notes.append("relay dropped 2 connections at DATA (one after taking the mail)")


QUICK_RETRY = "\n[notifications]\nretry_base_seconds = 5\n"

SCENARIOS = [
    Scenario("proxy-cut", "postgres-proxy", proxy_cut, why="every connection reset, new ones refused, 3 s"),
    Scenario("proxy-delay", "postgres-proxy", proxy_delay, why="2 s on every chunk both ways, 8 s"),
    Scenario("proxy-blackhole", "postgres-proxy", proxy_blackhole, why="nothing forwarded either way, 5 s"),
    Scenario("postgres-restart", "postgres", database_restart, why="pg_ctl stop -m fast, 2 s down, start"),
    Scenario("disk-full", "sqlite-disk", disk_full, why="the SQLite database's tmpfs full for 5 s"),
    Scenario(
        "stale-heartbeat",
        "postgres",
        stale_heartbeat,
        nodes=2,
        allowed_duplicates=SETTLE_EVERY,  # §9: what the node taken for dead had in flight
        why="node0 and its workers SIGSTOPped 25 s, node1 takes over",
    ),
    Scenario(
        "relay-refuses",
        "postgres",
        relay_refuses,
        extra_config=QUICK_RETRY,
        why="the relay answers 451 to every DATA for 5 s (retry_base_seconds = 5)",
    ),
    Scenario(
        "relay-drops",
        "postgres",
        relay_drops,
        allowed_duplicates=1,  # the mail the relay took before it dropped: the client cannot know
        extra_config=QUICK_RETRY,
        why="the relay drops two connections mid-batch, before and after taking the mail",
    ),
]
BY_NAME = {s.name: s for s in SCENARIOS}


# --- running one -----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    """A real filesystem of DISK_SIZE (tmpfs), mounted for the scenario; needs root or CAP_SYS_ADMIN."""
    mount_point = folder / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise PermissionError(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def run_scenario(
    scenario: Scenario,
    folder: Path,
    *,
    postgres: PrivatePostgres | None,
    mails: int,
    drain_limit: float = 60.0,
    spacing: float = 0.1,
) -> Outcome:
    """Run `scenario` once in `folder` with `mails` mails; what was observed."""
    with contextlib.ExitStack() as stack:
        world_kwargs: dict[str, object] = {}
        blob_dir = None
        if scenario.store.startswith("postgres"):
            assert postgres is not None, "this scenario needs PostgreSQL"
            url = postgres.create_database()
            node_url = url
            world_kwargs["postgres"] = postgres
            if scenario.store == "postgres-proxy":
                proxy = stack.enter_context(FaultProxy(postgres.port))
                world_kwargs["proxy"] = proxy
                node_url = make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
        else:
            disk = stack.enter_context(small_disk(folder))
            world_kwargs["disk"] = disk
            url = node_url = f"sqlite:///{disk / 'ticketgate.db'}"
            blob_dir = disk / "blobs"
        rig = Rig(
            folder,
            node_url,
            observe_url=url,
            nodes=scenario.nodes,
            extra_config=scenario.extra_config,
            blob_dir=blob_dir,
        )
        world = World(rig=rig, **world_kwargs)  # type: ignore[arg-type]
        rig.start()
        exits: list[str] = []
        stack.callback(lambda: exits.extend(rig.stop()))
        client = Client(rig.ports, mails, spacing=spacing, timeout=10.0, give_up=180.0)
        client.start()
        wait_until(lambda: len(client.accepted) >= max(1, mails // 3), 120, "a third of the mail accepted")
        started = time.monotonic()
        scenario.fault(world)
        ended = time.monotonic()
        client.stop_at = ended + drain_limit  # bounded: a mail not in by then counts as never accepted
        client.join(timeout=drain_limit + 60)
        accepted = len(client.accepted)
        drained_after = rig.wait_drained(accepted, ended, drain_limit)
        left = {} if drained_after is not None else rig.queues()

        subjects = {client.subject(n): n for n in client.accepted}
        titles = Counter(str(t["title"]) for t in rig.cli_json("tickets", "list"))  # type: ignore[union-attr]
        per_mail = {subject: titles.get(subject, 0) for subject in subjects}
        deliveries = Counter(str(m.message["Message-ID"]) for m in rig.sink.captured)
        acked = {r.lower() for m in rig.sink.captured for r in m.rcpt_tos}
        outcome = Outcome(
            notes=world.notes,
            scenario=scenario.name,
            mails=mails,
            accepted=accepted,
            refusals=client.refusals,
            tickets=sum(per_mail.values()),
            duplicates=sum(1 for n in per_mail.values() if n > 1),
            lost=sum(1 for n in per_mail.values() if n == 0),
            notifications=len(deliveries),
            expected_notifications=NOTIFICATIONS_PER_MAIL * accepted,
            duplicate_deliveries=sum(n - 1 for n in deliveries.values()),
            allowed_duplicates=scenario.allowed_duplicates,
            drained_after=drained_after,
            fault_seconds=ended - started,
            missing_acks=sorted(
                f"c{n}@customer.example" for n in client.accepted if f"c{n}@customer.example" not in acked
            )
            + ([TRIAGE] if accepted and TRIAGE not in acked else []),
            left=left,
        )
    outcome.node_exits = exits  # the nodes stopped when the block ended
    return outcome


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.1)
