"""Processing in worker processes, so it runs on its own cores instead of sharing one GIL with the
SMTP event loop that must answer `250` promptly.

`serve` starts `processing.processes` of them (each with `processing.workers` processor threads);
they meet the rest of the daemon only in the database, as the threads did: the inbox rows they
claim, and two cross-process signals — `wake` (intake committed mail) and `stop` (the daemon is
shutting down), made so that a killed worker cannot jam them (gateway/daemon/wake.py). On SQLite they
queue for the write lock with the daemon (gateway/store/db.py).

The daemon decides when they stop: after SMTP has stopped and the writer has committed what it
held, it sets `stop`; each worker finishes the mail it is on and exits. A worker that dies
(killed, out of memory, the database unreachable as it starts) is started again after a pause
that doubles, up to a minute, while workers keep dying young; whatever it had claimed is claimed
again when its lease runs out, so nothing is lost. A worker whose daemon has gone (killed with
SIGKILL) notices and exits rather than linger.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Protocol

from gateway.backoff import BackoffPolicy
from gateway.config import Settings
from gateway.daemon.wake import StopFlag, WakeSignal
from gateway.errors import TransientError
from gateway.ops import metrics
from gateway.ops.logs import configure as configure_logging
from gateway.store import outbox_wake

log = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 1.0  # before a dead worker is started again, so a crash loop does not spin
MAX_RESTART_PAUSE_SECONDS = 60.0
# The step of the one back-off policy, without its jitter: one parent restarts its own children.
RESTART_BACKOFF = BackoffPolicy(RESTART_PAUSE_SECONDS, MAX_RESTART_PAUSE_SECONDS)
HEALTHY_AFTER_SECONDS = 10.0  # a worker that lived this long died of something new: no back-off
IDLE_POLL_SECONDS = 1.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Wakeable(Protocol):
    def set(self) -> None: ...


class WorkerProcesses:
    """Starts, watches and stops the processing worker processes of one daemon."""

    def __init__(
        self,
        settings: Settings,
        *,
        count: int,
        log_level: int,
        node_id: int | None = None,
        sender_wake: WakeSignal | None = None,
    ) -> None:
        self._settings = settings
        self._node_id = node_id  # the daemon's `nodes` row: the workers' claims name it
        self._count = count
        self._log_level = log_level
        self._context: SpawnContext = multiprocessing.get_context("spawn")  # no fork of a threaded process
        # Not multiprocessing Events: a worker killed while waiting on one jams every later set()
        # (gateway/daemon/wake.py), and intake sets `wake` after every commit.
        self.wake = WakeSignal(self._context, waiters=count * settings.processing.workers)
        self._sender_wake = sender_wake  # the daemon's sender: set after a commit that queued mail
        self._stop = StopFlag(self._context)
        self._processes: list[SpawnProcess | None] = [None] * count
        self._started_at = [0.0] * count
        self._deaths = [0] * count  # quick deaths in a row of each slot's worker
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        for slot in range(self._count):
            self._start(slot)
        self._watcher = threading.Thread(target=self._watch, name="worker-watcher", daemon=True)
        self._watcher.start()

    def stop(self, timeout: float) -> None:
        """Ask every worker to finish its mail and exit; kill those still running after `timeout`.
        Calling it again does nothing more."""
        self._stopping.set()
        self._stop.set()
        self.wake.set()
        if self._watcher is not None:
            self._watcher.join()
        deadline = time.monotonic() + timeout
        for process in self._processes:
            if process is None:
                continue
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker process %d did not stop within %.0fs; killing it", process.pid, timeout)
                process.kill()
                process.join()

    def not_running(self) -> list[str]:
        """The worker processes that are not alive right now (died, not restarted yet), as reasons."""
        return [
            f"worker process {slot} is not running"
            + (f" (pid {process.pid} exited with {process.exitcode})" if process is not None else "")
            for slot, process in enumerate(self._processes)
            if process is None or not process.is_alive()
        ]

    def _start(self, slot: int) -> None:
        self._started_at[slot] = time.monotonic()
        process = self._context.Process(
            target=run_worker_process,
            args=(
                self._settings,
                slot,
                os.getpid(),
                self._stop,
                self.wake,
                self._log_level,
                self._node_id,
                self._sender_wake,
            ),
            name=f"ticketgate-worker-{slot}",
            daemon=False,
        )
        process.start()
        self._processes[slot] = process
        log.info("processing worker process %d started (pid %d)", slot, process.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for slot, process in enumerate(self._processes):
                if process is None or process.is_alive() or self._stopping.is_set():
                    continue
                metrics.mark_process_dead(process.pid or 0)
                lived = time.monotonic() - self._started_at[slot]
                if lived >= HEALTHY_AFTER_SECONDS:
                    self._deaths[slot] = 0
                self._deaths[slot] += 1
                pause = RESTART_BACKOFF.step(self._deaths[slot])
                log.error(
                    "processing worker process %d (pid %d) exited with %s; starting it again in %.0fs",
                    slot,
                    process.pid,
                    process.exitcode,
                    pause,
                )
                if self._stopping.wait(pause):
                    return
                try:
                    self._start(slot)
                except OSError as exc:  # out of processes or memory: the next round tries again
                    log.error("could not start processing worker process %d: %s", slot, exc)


def _lower_priority(nice: int, slot: int) -> None:
    """Run this worker process `nice` steps below `serve` (`processing.nice`). Under saturation the
    worker processes and serve's intake want the same cores; the SMTP answers, which the sending
    server waits for, then go first, and processing catches up whenever intake leaves a core idle
    (at low load there is always one, so nothing waits longer). Measured: docs/admin/configuration.md."""
    if nice <= 0:
        return
    try:
        os.nice(nice)
    except OSError as exc:  # a platform without it: the worker runs at serve's priority
        log.warning("worker process %d keeps serve's CPU priority: %s", slot, exc)


def run_worker_process(
    settings: Settings,
    slot: int,
    daemon_pid: int,
    stop: StopFlag,
    wake: WakeSignal,
    log_level: int,
    node_id: int | None = None,
    sender_wake: WakeSignal | None = None,
) -> None:
    """A worker process's main: `processing.workers` processor threads until `stop` or the daemon is
    gone. Each commit that queues notifications sets `sender_wake` (the daemon's sender waits on it)."""
    logging.basicConfig(level=log_level, format=LOG_FORMAT)
    configure_logging(settings.logging.format)
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    _lower_priority(settings.processing.nice, slot)
    # The daemon orders the shutdown (intake first, then processing): a Ctrl-C or a SIGTERM sent to
    # the whole process group must not stop a worker before the mail already accepted is handled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from gateway.daemon.runtime import build_runtime  # after logging is set up: building it may log

    try:
        runtime = build_runtime(settings, node_id=node_id, daemon=True)
    except TransientError as exc:  # the daemon starts this worker again after a pause
        log.error("worker process %d cannot start, database unavailable: %s", slot, exc)
        sys.exit(75)
    if sender_wake is not None:
        outbox_wake.on_commit(runtime.inbox.sessions, sender_wake.set)
    done = threading.Event()
    threads = [
        threading.Thread(
            target=runtime.processor(f"process-{slot}-worker-{n}").run,
            args=(done, wake, IDLE_POLL_SECONDS),
            name=f"processor-{slot}-{n}",
            daemon=True,
        )
        for n in range(settings.processing.workers)
    ]
    for thread in threads:
        thread.start()
    try:
        while not stop.wait(0.5):
            if os.getppid() != daemon_pid:
                log.error("the daemon (pid %d) is gone; worker process %d stops", daemon_pid, slot)
                break
    finally:
        done.set()
        wake.set()  # the threads wait on it: let them see `done` now
        for thread in threads:
            thread.join()
        runtime.close()
