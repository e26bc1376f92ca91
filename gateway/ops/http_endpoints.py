"""`metrics.listen`: GET /metrics (Prometheus text), /healthz and /readyz, on a thread of `serve`.

A WSGI app on the standard library's threading server, as prometheus-client's own
`start_http_server` does, plus the two probes: it runs beside the event loop, so a scrape or a
slow database check never holds up SMTP, and /healthz still answers while the loop is stuck.

/metrics sums the files of every process of this run (prometheus-client's multiprocess mode,
gateway/ops/metrics.py) and reads the store gauges from the database at scrape time
(`StoreCollector`), so a worker's counts and every node's view of the queues are in it.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from gateway.errors import TransientError
from gateway.ops.status import counts

log = logging.getLogger(__name__)

Readiness = Callable[[], list[str]]  # the reasons the daemon is not ready; empty when it is


class StoreCollector(Collector):
    """The queue gauges, read from the database at each scrape: right on every node."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("ticketgate_database_up", "1 when the database answered this scrape")
        try:
            snap = counts(self._engine)
        except TransientError as exc:
            log.warning("metrics: store gauges unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        inbox = GaugeMetricFamily("ticketgate_inbox_items", "Inbox rows by state", labels=["state"])
        for state in sorted({"pending", "processing", "done", "quarantined", *snap.inbox}):
            inbox.add_metric([state], snap.inbox.get(state, 0))
        yield inbox
        yield GaugeMetricFamily(
            "ticketgate_inbox_oldest_pending_seconds",
            "Age of the oldest mail not yet processed (0 when none is pending)",
            value=snap.oldest_pending_seconds(),
        )
        yield GaugeMetricFamily(
            "ticketgate_quarantine_items", "Mail that could not be processed", value=snap.quarantined
        )
        outbox = GaugeMetricFamily("ticketgate_outbox_items", "Notifications by state", labels=["state"])
        for state in sorted({"queued", "retry", "sent", "failed", "dead", "bounced", *snap.outbox}):
            outbox.add_metric([state], snap.outbox.get(state, 0))
        yield outbox


def metrics_app(engine: Engine, readiness: Readiness) -> Callable[..., Iterable[bytes]]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(StoreCollector(engine))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", b"GET only\n")
        if path == "/metrics":
            return _reply(start_response, "200 OK", _exposition(registry), CONTENT_TYPE_LATEST)
        if path == "/healthz":
            return _reply(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            reasons = readiness()
            if reasons:
                return _reply(start_response, "503 Service Unavailable", ("\n".join(reasons) + "\n").encode())
            return _reply(start_response, "200 OK", b"ready\n")
        return _reply(start_response, "404 Not Found", b"try /metrics, /healthz or /readyz\n")

    return app


def _exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition. A process that is just creating its metrics file leaves it empty for an
    instant, and prometheus-client's reader fails on it (struct.error): read again shortly after."""
    for _ in range(10):
        try:
            return generate_latest(registry)
        except struct.error:
            time.sleep(0.02)
    return generate_latest(registry)


def _reply(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # every scrape is not log news
        pass


class _ThreadingWSGIServer6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """The endpoint's server thread; `close()` stops it."""

    def __init__(self, host: str, port: int, app: Callable[..., Iterable[bytes]]) -> None:
        server_class = _ThreadingWSGIServer6 if ":" in host else ThreadingWSGIServer
        self._server: WSGIServer = make_server(
            host, port, app, server_class=server_class, handler_class=_QuietHandler
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
