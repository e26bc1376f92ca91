"""The world one fault scenario runs in, and what it measures: real `ticketgate serve` node(s) with
SMTP intake on a store (PostgreSQL, possibly behind the fault proxy, or SQLite), the real SMTP sink
as their relay, and a client that sends mail over SMTP as a sending MTA does (again after a `4xx`,
a reset or a timeout, to the next node if there are several).

After the fault, the rig looks as a user and an operator would: the mails the client got `250` for
against `ticketgate tickets list --json` and `inbox list --json`, each notification's Message-ID
as the relay received it, and the queues (`inbox`/`outbox` rows) until nothing is pending or due.
The scenarios (tests/faults/scenarios.py) decide the fault; tests/integration/test_fault_suite.py
asserts the promises on the `Outcome`, bench/fault_run.py prints it, repeated.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text

from gateway.store.db import make_engine
from tests.helpers import ServeProcess, free_port, make_mail, write_config
from tests.integration.smtp_sink import SmtpSink

SUPPORT = "support@smilepass.example"
TRIAGE = "triage@smilepass.example"
NOTIFICATIONS_PER_MAIL = 2  # the acknowledgement to the customer and the note to triage


@dataclass
class Outcome:
    """What one scenario run observed (the bench prints it; the test asserts on it)."""

    scenario: str
    mails: int  # the client's mails
    accepted: int  # of them, the ones that got 250 (all, in the end: the client sends again)
    refusals: int  # 4xx, resets and timeouts the client met and sent again after
    tickets: int  # tickets whose title is one of the client's mails
    duplicates: int  # mails that became more than one ticket
    lost: int  # mails that got 250 and were no ticket when the run ended (lost, or still pending)
    notifications: int  # distinct notifications (Message-IDs) the relay received
    expected_notifications: int
    duplicate_deliveries: int  # deliveries beyond the first of a notification
    allowed_duplicates: int  # what the scenario's promise allows (§9: a node taken for dead)
    drained_after: float | None  # seconds from the fault's end to nothing pending or due; None: not in time
    fault_seconds: float
    missing_acks: list[str] = field(default_factory=list)  # customers without their acknowledgement
    left: dict[str, object] = field(default_factory=dict)  # the queues when it was given up on
    notes: list[str] = field(default_factory=list)  # what the fault did, in words
    node_exits: list[str] = field(default_factory=list)  # nodes that did not stop cleanly, and their log

    def problems(self, drain_limit: float) -> list[str]:
        """Every promise this run broke, in words; empty when it kept them all."""
        said = []
        if self.accepted != self.mails:
            said.append(f"only {self.accepted}/{self.mails} mails were ever accepted")
        if self.lost:
            said.append(f"{self.lost} accepted mail(s) became no ticket")
        if self.duplicates:
            said.append(f"{self.duplicates} mail(s) became more than one ticket")
        if self.notifications != self.expected_notifications:
            said.append(f"{self.notifications}/{self.expected_notifications} notifications reached the relay")
        if self.missing_acks:
            some = ", ".join(self.missing_acks[:3]) + (" …" if len(self.missing_acks) > 3 else "")
            said.append(f"no notification reached {len(self.missing_acks)} recipient(s): {some}")
        if self.duplicate_deliveries > self.allowed_duplicates:
            said.append(
                f"{self.duplicate_deliveries} notification deliveries were duplicates"
                f" (allowed: {self.allowed_duplicates})"
            )
        said.extend(f"a node did not stop cleanly: {exit}" for exit in self.node_exits)
        if self.drained_after is None or self.drained_after > drain_limit:
            said.append(f"not drained within {drain_limit:.0f}s of the fault's end: {self.left}")
        return said

    def line(self) -> str:
        drained = "never" if self.drained_after is None else f"{self.drained_after:.1f}s"
        return (
            f"{self.scenario:<18} mails {self.accepted}/{self.mails} refusals {self.refusals:>3}"
            f" tickets {self.tickets} dup {self.duplicates} lost {self.lost}"
            f" | notifications {self.notifications}/{self.expected_notifications}"
            f" dup deliveries {self.duplicate_deliveries} (allowed {self.allowed_duplicates})"
            f" | fault {self.fault_seconds:.1f}s drained {drained} after"
            + "".join(f"; {note}" for note in self.notes)
        )


class Client:
    """Sends numbered mails as a sending MTA: each until a node answers `250`, to the next node after a
    refusal, a reset or a timeout; counts what it met. Runs on a thread (`start`/`join`)."""

    def __init__(
        self, ports: list[int], mails: int, *, spacing: float, timeout: float, give_up: float
    ) -> None:
        self.ports = ports
        self.mails = mails
        self.spacing = spacing
        self.timeout = timeout
        self.give_up = give_up
        self.accepted: list[int] = []
        self.refusals = 0
        self.failed: list[int] = []
        self.stop_at = float("inf")  # monotonic time after which it gives every mail left up
        self.run_id = f"{os.getpid()}-{time.monotonic_ns()}"
        self._thread = threading.Thread(target=self._run, name="fault-client", daemon=True)

    def subject(self, n: int) -> str:
        return f"Problem {n} of run {self.run_id}"

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        for n in range(self.mails):
            raw = make_mail(sender=f"c{n}@customer.example", subject=self.subject(n))
            deadline = time.monotonic() + self.give_up
            turn = n
            while True:
                if time.monotonic() > self.stop_at:
                    self.failed.append(n)
                    break
                port = self.ports[turn % len(self.ports)]
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=self.timeout) as smtp:
                        smtp.sendmail(f"c{n}@customer.example", [SUPPORT], raw)
                    self.accepted.append(n)
                    break
                except (OSError, smtplib.SMTPException):
                    self.refusals += 1
                    turn += 1
                    if time.monotonic() > deadline:
                        self.failed.append(n)
                        break
                    time.sleep(0.2)
            time.sleep(self.spacing)


class Rig:
    """Node(s), the sink, and the look into the store for one scenario. `database_url` is what the
    nodes use (through the proxy, if any); `observe_url` the test's own way to the same store."""

    def __init__(
        self,
        folder: Path,
        database_url: str,
        *,
        observe_url: str | None = None,
        nodes: int = 1,
        extra_config: str = "",
        blob_dir: Path | None = None,
    ) -> None:
        self.folder = folder
        self.database_url = database_url
        self.observe_url = observe_url or database_url
        self.sink = SmtpSink()
        self.nodes: list[ServeProcess] = []
        self.configs: list[Path] = []
        self.ports: list[int] = []
        self._nodes = nodes
        self._extra = extra_config
        self._blob_dir = blob_dir
        self.engine: Engine | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Rig:
        self.sink.__enter__()
        for number in range(self._nodes):
            self.configs.append(self._config(number))
        for config in self.configs:
            port = int(config.read_text(encoding="utf-8").split('listen = "127.0.0.1:')[1].split('"')[0])
            self.ports.append(port)
            self.nodes.append(ServeProcess(["--config", str(config)], config.parent, port, own_group=True))
        self.engine = make_engine(self.observe_url)
        return self

    def _config(self, number: int) -> Path:
        node_dir = self.folder / f"node{number}"
        node_dir.mkdir(parents=True)
        config = write_config(node_dir, self.database_url, self._extra, listen=f"127.0.0.1:{free_port()}")
        body = config.read_text(encoding="utf-8")
        body = body.replace(
            f'relay = "dir:{node_dir / "outgoing"}"', f'relay = "smtp://{self.sink.host}:{self.sink.port}"'
        )
        blobs = f'blob_dir = "{node_dir / "blobs"}"'
        if self.database_url.startswith("postgresql"):
            body = body.replace(blobs, "")  # PostgreSQL: blobs in the database, as nodes share them
        elif self._blob_dir is not None:
            body = body.replace(blobs, f'blob_dir = "{self._blob_dir}"')
        body = body.replace('ticket_prefix = "SP"', f'ticket_prefix = "SP"\nnode_name = "node{number}"')
        config.write_text(body, encoding="utf-8")
        return config

    def stop(self) -> list[str]:
        """Stop every node (SIGTERM); what went wrong for each that did not exit 0 within 30 s (such a
        node and its workers are then SIGKILLed, so none outlives the run)."""
        failed = []
        for node in self.nodes:
            if node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGCONT)  # a node left stopped would not hear SIGTERM
            try:
                code = node.stop()
            except subprocess.TimeoutExpired:
                node.kill_group()
                failed.append(f"did not stop within 30 s of SIGTERM:\n{node.output()[-3000:]}")
                continue
            if code != 0:
                failed.append(f"exit {code}:\n{node.output()[-3000:]}")
        if self.engine is not None:
            self.engine.dispose()
        self.sink.__exit__()
        return failed

    # --- faults on nodes -------------------------------------------------------------------

    def pause(self, node: int) -> None:
        """SIGSTOP the node and its worker processes: alive, silent, its heartbeat going stale."""
        os.killpg(self.nodes[node].process.pid, signal.SIGSTOP)

    def resume(self, node: int) -> None:
        os.killpg(self.nodes[node].process.pid, signal.SIGCONT)

    # --- looking ---------------------------------------------------------------------------

    def queues(self) -> dict[str, object]:
        """The inbox by state and outcome, the outbox by status (as `status` would count them)."""
        assert self.engine is not None
        with self.engine.connect() as conn:
            inbox = Counter(
                f"{state}/{outcome}"
                for state, outcome in conn.execute(text("select state, outcome from inbox"))
            )
            outbox = Counter(str(s) for (s,) in conn.execute(text("select status from outbox")))
        return {"inbox": dict(inbox), "outbox": dict(outbox)}

    def drained(self, accepted: int) -> bool:
        """Every accepted mail settled and each of its notifications sent: nothing pending, nothing due."""
        try:
            shown = self.queues()
        except Exception:  # the store is the fault: not drained
            return False
        inbox: dict[str, int] = shown["inbox"]  # type: ignore[assignment]
        outbox: dict[str, int] = shown["outbox"]  # type: ignore[assignment]
        unsettled = sum(n for key, n in inbox.items() if key.split("/")[0] in ("pending", "processing"))
        tickets = sum(n for key, n in inbox.items() if key.endswith("/ticket"))
        return (
            unsettled == 0
            and tickets >= accepted
            and set(outbox) <= {"sent"}
            and outbox.get("sent", 0) >= NOTIFICATIONS_PER_MAIL * accepted
        )

    def wait_drained(self, accepted: int, since: float, limit: float) -> float | None:
        """Seconds from `since` until drained, or None when `limit` passed first."""
        while True:
            if self.drained(accepted):
                return time.monotonic() - since
            if time.monotonic() - since > limit:
                return None
            time.sleep(0.25)

    def cli_json(self, *args: str) -> object:
        """`ticketgate ARGS --json` as an operator runs it, against the store directly."""
        config = self.configs[0]
        body = config.read_text(encoding="utf-8").replace(self.database_url, self.observe_url)
        direct = self.folder / "operator.toml"
        direct.write_text(body, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")}
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli.main", *args, "--json", "--config", str(direct)],
            capture_output=True,
            env=env,
            timeout=120,
            cwd=self.folder,
        )
        if done.returncode != 0:
            raise AssertionError(f"ticketgate {' '.join(args)}: exit {done.returncode}: {done.stderr!r}")
        return json.loads(done.stdout)
