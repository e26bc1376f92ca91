"""The daemon's Prometheus metrics: counters and histograms that intake, processing and the sender
bump with one call each, from whichever process they run in.

Processing runs in spawned worker processes (gateway/daemon/workers.py), so a counter kept in the
daemon's memory alone would miss every mail. prometheus-client's multiprocess mode solves that
without code of ours: each process writes its values to memory-mapped files in one folder
(`PROMETHEUS_MULTIPROC_DIR`) and a scrape sums them, so the counts of a worker that died or was
restarted stay in the totals. `serve` makes a fresh folder per run (`prepare_multiprocess`) before
anything touches a metric and before the workers are spawned (they inherit the variable), and
removes it on the way out. prometheus-client picks its value store when it is first imported,
hence the lazy import below: commands other than `serve` (ingest, process) count in memory, and
nobody scrapes them.

The gauges over the store (inbox, outbox, quarantine, IMAP) are not kept here: they are read from
the database at scrape time (gateway/metrics_store.py), so every node reports the same truth.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Mail work spans a millisecond (a 250 on a warm SQLite) to a minute (a relay timing out, a huge
# mail on a slow disk): 15 buckets over that range, denser at the fast end where targets live.
MAIL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Metrics:
    """The metric objects, made on first use (after `prepare_multiprocess`, when serving)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        # registry=None: a scrape reads every process's files (gateway/ops/http_endpoints.py), and
        # the objects can be made again after `prepare_multiprocess` without a duplicate name.
        self.smtp_replies = Counter(
            "ticketgate_smtp_replies", "SMTP/LMTP replies sent, by reply code", ["code"], registry=None
        )
        self.accept_seconds = Histogram(
            "ticketgate_accept_seconds",
            "From the end of DATA to the mail being committed to the inbox (what a 250 waits for)",
            buckets=MAIL_BUCKETS,
            registry=None,
        )
        self.mails_processed = Counter(
            "ticketgate_mails_processed", "Inbox items processed, by outcome", ["outcome"], registry=None
        )
        self.processing_seconds = Histogram(
            "ticketgate_processing_seconds",
            "Time to process one inbox item (all stages and the commit)",
            buckets=MAIL_BUCKETS,
            registry=None,
        )
        self.notifications = Counter(
            "ticketgate_notifications",
            "Notification delivery attempts, by template and result (sent, retry, failed, dead)",
            ["template", "result"],
            registry=None,
        )
        # Pollers run in the daemon itself; "max" keeps the newest time when summing processes.
        self.imap_last_poll = Gauge(
            "ticketgate_imap_last_poll_timestamp_seconds",
            "When this node last found an IMAP mailbox answering (a round, or an IDLE check)",
            ["mailbox"],
            multiprocess_mode="max",
            registry=None,
        )
        # Set by the node that reconciled (the scheduler's); "max" so a stale 0 elsewhere hides nothing.
        self.imap_unreconciled = Gauge(
            "ticketgate_imap_unreconciled",
            "Messages the last IMAP reconciliation found not taken in (stuck in the watched folder, "
            "or in the processed folder but not in the inbox)",
            ["mailbox"],
            multiprocess_mode="max",
            registry=None,
        )


@functools.cache
def _metrics() -> _Metrics:
    return _Metrics()


def prepare_multiprocess() -> Path:
    """A fresh, empty folder for this run's metric files, exported as PROMETHEUS_MULTIPROC_DIR.

    Must run before the first metric is touched in this process and before worker processes are
    spawned. Values from an earlier run must not leak into this one, hence a new folder each time.
    """
    folder = Path(tempfile.mkdtemp(prefix="ticketgate-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    _rebind_value_class()
    return folder


def remove_multiprocess(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get(MULTIPROC_ENV) == str(folder):
        del os.environ[MULTIPROC_ENV]
        _rebind_value_class()


def mark_process_dead(pid: int) -> None:
    """A worker process died: drop its live-gauge files (its counters stay in the totals)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _rebind_value_class() -> None:
    """prometheus-client chooses memory or files when first imported; when it was imported before
    (a test running the daemon in its own process), choose again and make the metrics anew."""
    import sys

    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
    _metrics.cache_clear()


# --- the one-line hooks ------------------------------------------------------------------------


def smtp_replies(status: Any) -> None:
    """Count the reply lines aiosmtpd pushes; a multi-line reply ("250-…" … "250 …") counts once."""
    if not isinstance(status, str):
        return
    counter = _metrics().smtp_replies
    for line in status.split("\r\n"):
        if len(line) >= 3 and line[:3].isdigit() and line[3:4] != "-":
            counter.labels(line[:3]).inc()


@contextmanager
def accepting() -> Iterator[None]:
    """Time the commit a `250` waits for."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _metrics().accept_seconds.observe(time.perf_counter() - started)


def mail_processed(outcome: str, seconds: float) -> None:
    m = _metrics()
    m.mails_processed.labels(outcome).inc()
    m.processing_seconds.observe(seconds)


def notification(template: str, result: str) -> None:
    _metrics().notifications.labels(template or "unknown", result).inc()


def imap_polled(mailbox: str) -> None:
    """The mailbox answered just now (a round taken in, or an IDLE check that came back)."""
    _metrics().imap_last_poll.labels(mailbox).set(time.time())


def imap_unreconciled(mailbox: str, count: int) -> None:
    """What the last reconciliation of `mailbox` found (0 once all is taken in)."""
    _metrics().imap_unreconciled.labels(mailbox).set(count)
