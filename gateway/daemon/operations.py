"""What `serve` runs for its operator besides mail: the systemd watchdog and `STATUS=` line, the
readiness verdict, and the metrics endpoint (gateway/ops/http_endpoints.py).

The watchdog ping is a task on the event loop itself, every WATCHDOG_USEC/2: it runs only while the
loop turns, and it sends `WATCHDOG=1` only while every worker process lives, so systemd restarts a
daemon whose loop is stuck or whose processing is gone (`WatchdogSec=` in systemd/ticketgate.service).
A worker that dies is restarted by the daemon within seconds (gateway/daemon/workers.py); a watchdog of
30 s tolerates that and catches a daemon that cannot get its workers back.

The `STATUS=` line ("accepting on 127.0.0.1:2525; inbox 3 pending; outbox 0 due; 1/1 workers")
is refreshed by a second task from a count in a thread, so a slow database never delays the ping.

Debug hook: with `TICKETGATE_DEBUG_BLOCK_LOOP_SECONDS=N` in its environment, `serve` blocks its
event loop for N seconds on SIGUSR2 — how the tests (and an operator trying a watchdog setting)
show that a stuck loop stops the pings while the process lives. Unset, SIGUSR2 does nothing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

from gateway.config import Settings
from gateway.errors import CannotListen, TransientError
from gateway.intake.smtp import SmtpServer
from gateway.ops.status import check_database, counts, read_engine
from gateway.ops.systemd import sd_notify

log = logging.getLogger(__name__)

DEFAULT_TICK_SECONDS = 5.0  # without a systemd watchdog: how often the loop proves it turns
STATUS_EVERY_SECONDS = 10.0
BLOCK_LOOP_ENV = "TICKETGATE_DEBUG_BLOCK_LOOP_SECONDS"

NotRunning = Callable[[], list[str]]


def watchdog_interval() -> float | None:
    """Half of systemd's WATCHDOG_USEC, when systemd asked this process for pings; else None."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid.isdigit() and int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


class Operations:
    def __init__(
        self,
        settings: Settings,
        smtp: SmtpServer,
        not_running: NotRunning,
        *,
        intake_problems: NotRunning = list,
    ) -> None:
        """`not_running`: the workers that are down (they also stop the watchdog pings);
        `intake_problems`: why intake cannot store mail now (disk full, database refusing writes):
        not ready, but no reason for systemd to restart a daemon that recovers by itself."""
        self._settings = settings
        self._smtp = smtp
        self._not_running = not_running
        self._intake_problems = intake_problems
        self._engine = read_engine(settings.database.url, settings.database.reply_timeout)
        self._watchdog = watchdog_interval()
        self._tick = self._watchdog or DEFAULT_TICK_SECONDS
        self._last_tick = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._server = None
        self.metrics_port: int | None = None

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._beat()), asyncio.create_task(self._status())]
        listen = self._settings.metrics.listen
        if listen is not None:
            from gateway.ops.http_endpoints import MetricsServer, metrics_app

            try:
                server = MetricsServer(listen[0], listen[1], metrics_app(self._engine, self.readiness))
            except OSError as exc:
                raise CannotListen("metrics.listen", listen[0], listen[1], exc) from None
            server.start()
            self._server = server
            self.metrics_port = server.port
            log.info("metrics, /healthz and /readyz on http://%s:%d/", listen[0], server.port)
        if self._watchdog is not None:
            log.info("systemd watchdog: pinging every %.1fs", self._watchdog)
        block = os.environ.get(BLOCK_LOOP_ENV, "")
        if block:
            seconds = float(block)
            log.warning(
                "debug hook armed: SIGUSR2 blocks the event loop for %.0fs (%s)", seconds, BLOCK_LOOP_ENV
            )
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, _block_loop, seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await asyncio.to_thread(self._server.close)
        self._engine.dispose()

    def readiness(self) -> list[str]:
        """Why the daemon is not ready, one reason a line; empty when it is (asked from the HTTP thread)."""
        reasons: list[str] = []
        try:
            check_database(self._engine)
        except TransientError as exc:
            reasons.append(str(exc))
        if not self._smtp.serving:
            reasons.append(f"intake is not listening on {self._smtp.host}:{self._smtp.port}")
        reasons.extend(self._intake_problems())
        reasons.extend(self._not_running())
        stalled = time.monotonic() - self._last_tick
        if stalled > 3 * self._tick + 1:
            reasons.append(f"the event loop has not turned for {stalled:.0f}s")
        return reasons

    async def _beat(self) -> None:
        while True:
            self._last_tick = time.monotonic()
            if self._watchdog is not None and not self._not_running():
                sd_notify("WATCHDOG=1")
            await asyncio.sleep(self._tick)

    async def _status(self) -> None:
        while True:
            sd_notify(f"STATUS={await asyncio.to_thread(self.status_line)}")
            await asyncio.sleep(STATUS_EVERY_SECONDS)

    def status_line(self) -> str:
        smtp = self._smtp
        parts = [f"{'accepting' if smtp.serving else 'not accepting'} on {smtp.host}:{smtp.port}"]
        try:
            snap = counts(self._engine)
            parts.append(f"inbox {snap.pending} pending")
            if snap.quarantined:
                parts.append(f"{snap.quarantined} quarantined")
            parts.append(f"outbox {snap.outbox_due_now} due")
        except TransientError as exc:
            parts.append(str(exc)[:200])
        down = self._intake_problems() + self._not_running()
        if down:
            parts.append("; ".join(down))
        return "; ".join(parts)


def _block_loop(seconds: float) -> None:
    log.warning("debug hook: blocking the event loop for %.0fs", seconds)
    time.sleep(seconds)
