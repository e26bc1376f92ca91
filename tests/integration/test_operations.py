"""`serve` as an operator watches it: /metrics scraped and parsed as Prometheus would, /healthz and
/readyz, JSON log lines, and the systemd watchdog read from a real notify socket."""

from __future__ import annotations

import itertools
import json
import os
import signal
import smtplib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.helpers import ServeProcess, free_port, make_mail, write_config
from tests.integration.test_worker_processes import _workers
from tests.integration.waits import wait_for as _wait


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels), parsed by prometheus-client."""
    status, body = _get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _serve(tmp_path: Path, database_url: str, extra: str = "", env: dict[str, str] | None = None):
    port, metrics_port = free_port(), free_port()
    config = write_config(
        tmp_path,
        database_url,
        f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n{extra}',
        listen=f"127.0.0.1:{port}",
    )
    serve = ServeProcess(["--config", str(config)], tmp_path, port, env=env)
    _wait(lambda: _reachable(metrics_port), timeout=30, what="the metrics endpoint")
    return serve, metrics_port


def _reachable(port: int) -> bool:
    try:
        return _get(port, "/healthz")[0] == 200
    except OSError:
        return False


def test_metrics_count_mail_from_smtp_to_the_worker_process(tmp_path: Path, database_url: str) -> None:
    serve, metrics_port = _serve(tmp_path, database_url, '[logging]\nformat = "json"\n')
    try:
        before = _scrape(metrics_port)
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
            for n in range(3):
                client.sendmail(
                    "maria@customer.example", ["support@smilepass.example"], make_mail(f"Refund {n}")
                )
        _wait(
            lambda: _value(_scrape(metrics_port), "ticketgate_inbox_items", state="done") == 3,
            what="three mails processed",
        )
        after = _wait(
            lambda: (
                (s := _scrape(metrics_port))
                and _value(s, "ticketgate_outbox_items", state="sent") == 6
                # the worker process's counters reach the scrape a moment after its commit
                and _value(s, "ticketgate_mails_processed_total", outcome="ticket") == 3
                and s
            ),
            what="six notifications sent and three mails counted by the worker",
        )
        assert isinstance(after, dict)

        def grew(name: str, **labels: str) -> float:
            return _value(after, name, **labels) - _value(before, name, **labels)

        # One session: EHLO, then MAIL, RCPT and the end of DATA three times: ten 250s, three 354s.
        assert grew("ticketgate_smtp_replies_total", code="250") == 10
        assert grew("ticketgate_smtp_replies_total", code="354") == 3
        assert grew("ticketgate_accept_seconds_count") == 3
        # Processing ran in the worker process (processing.processes = 1), not in serve itself.
        assert _value(after, "ticketgate_mails_processed_total", outcome="ticket") == 3
        assert _value(after, "ticketgate_processing_seconds_count") == 3
        assert _value(after, "ticketgate_processing_seconds_bucket", le="60.0") == 3
        assert _value(after, "ticketgate_notifications_total", template="ticket_created", result="sent") == 3
        assert _value(after, "ticketgate_inbox_items", state="pending") == 0
        assert _value(after, "ticketgate_inbox_oldest_pending_seconds") == 0
        assert _value(after, "ticketgate_quarantine_items") == 0
        assert _value(after, "ticketgate_database_up") == 1
        assert _get(metrics_port, "/healthz") == (200, "ok\n")
        assert _get(metrics_port, "/readyz") == (200, "ready\n")
    finally:
        assert serve.stop() == 0

    # JSON logs: every line an object; the processed lines carry the mail's identifiers.
    lines = [json.loads(line) for line in serve.output().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    processed = [line for line in lines if line.get("outcome") == "ticket"]
    assert len(processed) == 3
    assert {line["ticket"] for line in processed} == {"SP-1", "SP-2", "SP-3"}
    assert all(
        isinstance(line["inbox_id"], int) and "@customer.example" in line["message_id"] for line in processed
    )


def test_readyz_says_why_when_the_database_is_gone(tmp_path: Path, fresh_postgres: str) -> None:
    serve, metrics_port = _serve(tmp_path, fresh_postgres)
    try:
        assert _get(metrics_port, "/readyz") == (200, "ready\n")
        url = make_url(fresh_postgres)
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
        admin.dispose()
        status, body = _get(metrics_port, "/readyz")
        assert status == 503
        assert "database unavailable" in body and url.database in body
        assert _get(metrics_port, "/healthz") == (200, "ok\n")  # the process itself is fine
        assert _value(_scrape(metrics_port), "ticketgate_database_up") == 0
    finally:
        serve.stop()  # whatever its exit code: its database is gone


def test_readyz_says_why_while_a_killed_worker_is_not_back(tmp_path: Path) -> None:
    serve, metrics_port = _serve(tmp_path, f"sqlite:///{tmp_path / 'tg.db'}")
    try:
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
            client.sendmail("maria@customer.example", ["support@smilepass.example"], make_mail("Before"))
        _wait(
            lambda: _value(_scrape(metrics_port), "ticketgate_mails_processed_total", outcome="ticket") == 1
        )
        assert _get(metrics_port, "/readyz")[0] == 200
        (worker,) = _wait(lambda: _workers(serve.process.pid))  # type: ignore[misc]
        os.kill(worker, signal.SIGKILL)
        _status, body = _wait(lambda: (r := _get(metrics_port, "/readyz"))[0] == 503 and r, timeout=10)  # type: ignore[misc]
        assert "worker process 0 is not running" in body and f"pid {worker}" in body
        # The daemon starts it again; ready again, and the dead worker's count is still there.
        _wait(lambda: _get(metrics_port, "/readyz")[0] == 200, timeout=30)
        assert _value(_scrape(metrics_port), "ticketgate_mails_processed_total", outcome="ticket") == 1
        # Intake still answers and wakes the new worker (a killed waiter used to jam the wake-up).
        with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as client:
            client.sendmail("maria@customer.example", ["support@smilepass.example"], make_mail("After"))
        _wait(
            lambda: _value(_scrape(metrics_port), "ticketgate_mails_processed_total", outcome="ticket") == 2
        )
    finally:
        assert serve.stop() == 0


class NotifySocket:
    """A real sd_notify socket: a unix datagram socket the daemon is pointed at by NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.states: list[tuple[float, str]] = []  # (when, /proc state) of the watched process

    def read(
        self,
        seconds: float,
        watch_pid: int | None = None,
        until: Callable[[list[tuple[float, str]]], bool] = lambda got: False,
    ) -> list[tuple[float, str]]:
        """Every message that arrives within `seconds`, with its arrival time, or until `until(got)`
        holds (what the test waits for has arrived: no need to sit out the rest); with `watch_pid`,
        that process's state is sampled meanwhile (into `states`)."""
        got: list[tuple[float, str]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until(got):
            if watch_pid is not None:
                stat = Path(f"/proc/{watch_pid}/stat").read_text()
                self.states.append((time.monotonic(), stat.rpartition(")")[2].split()[0]))
            try:
                got.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue
        return got

    def close(self) -> None:
        self.sock.close()


def _count(got: list[tuple[float, str]], message: str) -> int:
    return sum(1 for _, m in got if m == message)


def _ready_and_pinging(port: int) -> Callable[[list[tuple[float, str]]], bool]:
    """What the first read asserts has all arrived: READY, three pings, and the status as last said."""

    def arrived(got: list[tuple[float, str]]) -> bool:
        statuses = [m for _, m in got if m.startswith("STATUS=")]
        return (
            _count(got, "READY=1") > 0
            and _count(got, "WATCHDOG=1") >= 3
            and bool(statuses)
            and statuses[-1].startswith(f"STATUS=accepting on 127.0.0.1:{port}; inbox 0 pending")
        )

    return arrived


def _longest_gap(since: float, got: list[tuple[float, str]]) -> float:
    """The longest time without a ping from `since` to the last ping: the blocked loop's gap once
    the pings have started again (the test asserts >= 4 s of the 6 s block)."""
    pings = [since] + [at for at, m in got if m == "WATCHDOG=1"]
    return max(b - a for a, b in itertools.pairwise(pings)) if len(pings) > 1 else 0.0


def test_watchdog_pings_stop_while_the_event_loop_is_blocked(tmp_path: Path) -> None:
    notify = NotifySocket(Path(f"/tmp/tg-notify-{os.getpid()}-{time.monotonic_ns()}.sock"))
    env = {
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": "1000000",  # systemd's WatchdogSec=1: a ping every half second
        "TICKETGATE_DEBUG_BLOCK_LOOP_SECONDS": "6",
    }
    try:
        serve, _ = _serve(tmp_path, f"sqlite:///{tmp_path / 'tg.db'}", env=env)
        try:
            first = [m for _, m in notify.read(3, until=_ready_and_pinging(serve.port))]
            assert "READY=1" in first
            assert first.count("WATCHDOG=1") >= 3
            statuses = [m for m in first if m.startswith("STATUS=")]
            assert statuses and statuses[-1].startswith(
                f"STATUS=accepting on 127.0.0.1:{serve.port}; inbox 0 pending"
            )

            serve.process.send_signal(signal.SIGUSR2)
            signalled_at = time.monotonic()
            during = notify.read(
                8, watch_pid=serve.process.pid, until=lambda got: _longest_gap(signalled_at, got) >= 4
            )
            pings = [signalled_at] + [at for at, m in during if m == "WATCHDOG=1"]
            # The loop sleeps 6 s: the pings stop for about that long (timing-tolerant: >= 4 s) ...
            gap_start, gap_end = max(itertools.pairwise(pings), key=lambda pair: pair[1] - pair[0])
            assert gap_end - gap_start >= 4, pings
            # ... while the process lives (sleeping in the blocked loop, not stopped or gone).
            states = [state for at, state in notify.states if gap_start + 0.5 < at < gap_end - 0.5]
            assert states and set(states) <= {"S", "R", "D"}, states
            assert serve.process.poll() is None
            assert "debug hook: blocking the event loop for 6s" in serve.output()

            after = [m for _, m in notify.read(4, until=lambda got: _count(got, "WATCHDOG=1") >= 2)]
            assert after.count("WATCHDOG=1") >= 2  # the loop turns again: so do the pings
        finally:
            assert serve.stop() == 0
        assert "STOPPING=1" in [
            m for _, m in notify.read(0.5, until=lambda got: _count(got, "STOPPING=1") > 0)
        ]
    finally:
        notify.close()
        notify.path.unlink(missing_ok=True)


@pytest.mark.parametrize("listen", ["127.0.0.1:notaport", "nowhere"])
def test_a_bad_metrics_listen_is_a_config_error(tmp_path: Path, listen: str) -> None:
    from tests.helpers import ticketgate

    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'tg.db'}", f'\n[metrics]\nlisten = "{listen}"\n')
    checked = ticketgate("check-config", config=config)
    assert checked.returncode == 78
    assert "metrics.listen" in checked.stderr
