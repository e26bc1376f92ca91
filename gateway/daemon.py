"""The composition root of `ticketgate serve`: SMTP/LMTP intake, the processing workers, shutdown.

Intake and processing meet only in the inbox table: the SMTP side commits and answers, then
wakes the workers, which claim rows on their own threads. On SIGTERM the listener stops first
(open transactions finish or get 421), the writer commits what it holds, then the workers stop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Sequence

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.domain import Envelope
from gateway.errors import TransientError
from gateway.intake.smtp import start_smtp
from gateway.intake.writer import InboxWriter
from gateway.runtime import Runtime, build_runtime
from gateway.store.inbox import InboxStore
from gateway.systemd import sd_notify

log = logging.getLogger(__name__)

EX_TEMPFAIL = 75
SHUTDOWN_GRACE_SECONDS = 30.0


class _WakingInbox:
    """The inbox as the SMTP writer sees it: after each commit, wake the processing workers."""

    def __init__(self, inbox: InboxStore, wake: threading.Event) -> None:
        self._inbox = inbox
        self._wake = wake

    def add_many(self, mails: Sequence[tuple[bytes, Envelope]]) -> list[int]:
        ids = self._inbox.add_many(mails)
        self._wake.set()
        return ids


def run_daemon(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; the process exit code."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO
    _announce(settings)
    try:
        runtime = build_runtime(settings)
    except TransientError as exc:
        log.error("cannot start, database unavailable (will exit 75 for a restart): %s", exc)
        return EX_TEMPFAIL
    try:
        return asyncio.run(_serve(runtime))
    finally:
        runtime.close()


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


async def _serve(runtime: Runtime) -> int:
    settings = runtime.settings
    stop_workers = threading.Event()
    wake = threading.Event()
    writer = InboxWriter(_WakingInbox(runtime.inbox, wake))
    await writer.start()
    smtp = await start_smtp(settings.smtp, GatewayAddresses(settings.gateway.addresses), writer)
    log.info("%s intake listening on %s:%d", "LMTP" if smtp.lmtp else "SMTP", smtp.host, smtp.port)

    workers = [
        threading.Thread(
            target=runtime.processor(f"worker-{n}").run,
            args=(stop_workers, wake),
            name=f"processor-{n}",
            daemon=True,
        )
        for n in range(settings.processing.workers)
    ]
    for worker in workers:
        worker.start()

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    sd_notify("READY=1")
    log.info("ready")

    await stopping.wait()
    log.info("shutting down")
    sd_notify("STOPPING=1")
    await smtp.stop(grace=SHUTDOWN_GRACE_SECONDS)
    await writer.close()
    stop_workers.set()
    wake.set()
    for worker in workers:
        await asyncio.to_thread(worker.join)
    log.info("stopped")
    return 0
