"""The composition root of `ticketgate serve`: SMTP/LMTP intake, the processing workers, shutdown.

Intake and processing meet only in the inbox table: the SMTP side commits and answers, then
wakes the workers, which claim rows in worker processes of their own (gateway/daemon/workers.py; or on
threads of this process with `processing.processes = 0`). On SIGTERM the listener stops first
(open transactions finish or get 421), the writer commits what it holds, then the workers stop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.daemon.control import CommandLine, start_control
from gateway.daemon.operations import Operations
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.daemon.scheduler import Scheduler
from gateway.daemon.wake import WakeSignal
from gateway.daemon.workers import Wakeable, WorkerProcesses
from gateway.domain import Envelope
from gateway.errors import CannotListen, TransientError
from gateway.intake.imap import ImapPoller
from gateway.intake.smtp import start_smtp
from gateway.intake.writer import InboxWriter
from gateway.ops import metrics
from gateway.ops.heartbeat import Heartbeat
from gateway.ops.systemd import sd_notify
from gateway.store import outbox_wake
from gateway.store.db import intake_first
from gateway.store.imap_health import ImapHealthStore
from gateway.store.imap_state import ImapStateStore
from gateway.store.inbox import InboxStore

log = logging.getLogger(__name__)

EX_TEMPFAIL = 75
EX_OSERR = 71  # a listener could not be opened (sysexits)
SHUTDOWN_GRACE_SECONDS = 30.0


class _WakingInbox:
    """The inbox as the SMTP writer sees it: its commits go ahead of every other writer on SQLite's
    write lock (`intake_first`: a `250` waits for them; the processor's batches step aside), and
    after each commit the processing workers are woken."""

    def __init__(self, inbox: InboxStore, wake: Wakeable) -> None:
        self._inbox = inbox
        self._wake = wake

    def add_many(self, mails: Sequence[tuple[bytes, Envelope]]) -> list[int]:
        with intake_first():
            ids = self._inbox.add_many(mails)
        self._wake.set()
        return ids

    def add_taken(self, take: Callable[[], Sequence[tuple[bytes, Envelope]]]) -> list[int]:
        with intake_first():
            ids = self._inbox.add_taken(take)
        self._wake.set()
        return ids

    def probe_write(self) -> None:
        with intake_first():
            self._inbox.probe_write()


def run_daemon(settings: Settings, *, command_line: CommandLine | None = None) -> int:
    """Run until SIGTERM or SIGINT; the process exit code. `command_line`: what the control socket
    runs for read-only commands (gateway/daemon/control.py)."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
    _announce(settings)
    # Before any metric is touched and any worker spawned: the workers inherit the folder.
    metrics_dir = metrics.prepare_multiprocess() if settings.metrics.listen is not None else None
    try:
        try:
            runtime = build_runtime(settings, daemon=True)
        except TransientError as exc:
            log.error("cannot start, database unavailable (will exit 75 for a restart): %s", exc)
            return EX_TEMPFAIL
        heartbeat = Heartbeat(runtime.engine, name=settings.gateway.node_name)
        try:
            runtime.inbox.node_id = heartbeat.register()
        except TransientError as exc:
            runtime.close()
            log.error("cannot start, database unavailable (will exit 75 for a restart): %s", exc)
            return EX_TEMPFAIL
        heartbeat.start()
        try:
            return asyncio.run(_serve(runtime, command_line))
        except CannotListen as exc:
            log.error("%s", exc)
            return EX_OSERR
        finally:
            heartbeat.stop()
            runtime.close()
    finally:
        if metrics_dir is not None:
            metrics.remove_multiprocess(metrics_dir)


def _announce(settings: Settings) -> None:
    if settings.source is None:
        log.warning(
            "no config file: running on the embedded defaults (SQLite %s, SMTP on %s:%d, outgoing mail "
            "to %s, accepting mail for %s)",
            settings.database.url,
            settings.smtp.host,
            settings.smtp.port,
            settings.outbound.relay,
            ", ".join(settings.gateway.addresses),
        )
    else:
        log.info("config: %s", settings.source)
    if settings.uses_development_secret:
        log.warning("gateway.secret is the development secret: set your own before real use")
    for notice in settings.notifications.notices:
        log.warning("%s", notice)


class _Processing(Protocol):
    wake: Wakeable

    def not_running(self) -> list[str]: ...
    def start(self) -> None: ...
    def stop(self, timeout: float) -> None: ...


class _ProcessorThreads:
    """`processing.processes = 0`: the processor threads run in the daemon's own process."""

    def __init__(self, runtime: Runtime) -> None:
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=runtime.processor(f"worker-{n}").run,
                args=(self._stop, self.wake),
                name=f"processor-{n}",
                daemon=True,
            )
            for n in range(runtime.settings.processing.workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def not_running(self) -> list[str]:
        return [f"processor thread {t.name} is not running" for t in self._threads if not t.is_alive()]

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join()


async def _serve(runtime: Runtime, command_line: CommandLine | None = None) -> int:
    settings = runtime.settings
    # SIGTERM and SIGINT are taken first, before anything starts: one that arrives while the
    # listener, the workers and the sender are still starting (systemd stopping a unit it has just
    # started; a test that stops serve once its port answers) waits for them and stops them in
    # order, instead of killing the process with a mail perhaps in DATA.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    # The sender's wake-up: set after each commit that queued notifications, here and in the
    # worker processes (gateway/store/outbox_wake.py).
    sender_wake = WakeSignal(multiprocessing.get_context("spawn"), waiters=1)
    processing: _Processing = (
        WorkerProcesses(
            settings,
            count=settings.processing.processes,
            log_level=logging.getLogger().getEffectiveLevel(),
            node_id=runtime.inbox.node_id,
            sender_wake=sender_wake,
        )
        if settings.processing.processes > 0
        else _ProcessorThreads(runtime)
    )
    processing.start()
    stop_waking = outbox_wake.on_commit(runtime.inbox.sessions, sender_wake.set)
    try:
        return await _run(runtime, processing, sender_wake, command_line, stopping)
    finally:
        stop_waking()
        # Also when intake could not start (its port taken): a worker process left waiting for
        # its stop signal would keep the daemon from exiting.
        await asyncio.to_thread(processing.stop, SHUTDOWN_GRACE_SECONDS)


async def _run(
    runtime: Runtime,
    processing: _Processing,
    sender_wake: WakeSignal,
    command_line: CommandLine | None,
    stopping: asyncio.Event,
) -> int:
    settings = runtime.settings
    stop_workers = threading.Event()
    writer = InboxWriter(_WakingInbox(runtime.inbox, processing.wake))
    await writer.start()
    try:
        smtp = await start_smtp(settings.smtp, GatewayAddresses(settings.gateway.addresses), writer)
    except OSError as exc:
        await writer.close()
        raise CannotListen("smtp.listen", settings.smtp.host, settings.smtp.port, exc) from None
    log.info("%s intake listening on %s:%d", "LMTP" if smtp.lmtp else "SMTP", smtp.host, smtp.port)
    stop_pollers = threading.Event()
    pollers = _start_imap_pollers(runtime, processing.wake, stop_pollers)
    # The outbox sender: one thread, since it mostly waits on the relay (or for a wake-up).
    sender = threading.Thread(
        target=runtime.sender("sender").run,
        args=(stop_workers, settings.notifications.poll_seconds, sender_wake),
        name="outbox-sender",
        daemon=True,
    )
    sender.start()
    listener = _start_listener(runtime, sender_wake, stop_workers)
    log.info("outbox sender delivering through %s", settings.outbound.relay)
    # The scheduler (auto-close, escalations, the digest); on PostgreSQL an advisory lock lets one
    # node at a time do a round.
    jobs = Scheduler(runtime.inbox.sessions, settings, notifier=runtime.deps.notifier)
    scheduler = threading.Thread(target=jobs.run, args=(stop_workers,), name="scheduler", daemon=True)
    scheduler.start()

    operations = Operations(settings, smtp, processing.not_running, intake_problems=writer.problems)
    cannot_listen: CannotListen | None = None
    try:
        await operations.start()
    except CannotListen as exc:  # the metrics port: stop what already runs, in the usual order
        cannot_listen = exc
        stopping.set()
    control = start_control(settings, command_line) if cannot_listen is None else None
    if cannot_listen is None:
        sd_notify("READY=1")
        log.info("ready")

    await stopping.wait()
    log.info("shutting down")
    sd_notify("STOPPING=1")
    await operations.stop()
    if control is not None:
        await asyncio.to_thread(control.stop)
    await smtp.stop(grace=SHUTDOWN_GRACE_SECONDS)
    await writer.close()
    stop_pollers.set()
    for poller in pollers:
        await asyncio.to_thread(poller.join)
    await asyncio.to_thread(processing.stop, SHUTDOWN_GRACE_SECONDS)
    stop_workers.set()
    sender_wake.set()
    await asyncio.to_thread(sender.join)
    if listener is not None:
        await asyncio.to_thread(listener.join)
    await asyncio.to_thread(scheduler.join)
    if cannot_listen is not None:
        raise cannot_listen
    log.info("stopped")
    return 0


def _start_listener(runtime: Runtime, wake: Wakeable, stop: threading.Event) -> threading.Thread | None:
    """PostgreSQL: a thread that wakes the sender when any node (or command) queues notifications."""
    if runtime.engine.dialect.name != "postgresql":
        return None
    thread = threading.Thread(
        target=outbox_wake.listen_for_queued,
        args=(runtime.engine, wake.set, stop),
        kwargs={"reply_timeout": runtime.settings.database.reply_timeout},
        name="outbox-listener",
        daemon=True,
    )
    thread.start()
    return thread


def _start_imap_pollers(runtime: Runtime, wake: Wakeable, stop: threading.Event) -> list[threading.Thread]:
    """One poller thread per `[[imap]]` account; each wakes the workers after it commits mail."""
    state = ImapStateStore(runtime.engine)
    health = ImapHealthStore(runtime.engine)
    threads: list[threading.Thread] = []
    for account in runtime.settings.imap:
        poller = ImapPoller(
            account,
            state,
            max_message_size=runtime.settings.smtp.max_message_size,
            on_commit=wake.set,
            on_token=health.token_recorder(account.name),
        )
        thread = threading.Thread(target=poller.run, args=(stop,), name=f"imap-{account.name}", daemon=True)
        thread.start()
        log.info("IMAP intake %s: %s on %s:%d", account.name, account.folder, account.host, account.port)
        threads.append(thread)
    return threads
