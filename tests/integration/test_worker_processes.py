"""`serve` with its processing in worker processes (`processing.processes`): mail still becomes
tickets, a killed worker is replaced without losing mail, a worker never outlives its daemon, and
SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ServeProcess, free_port, make_mail, ticketgate, write_config
from tests.integration.waits import wait_for


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the daemon's worker processes and multiprocessing's helper)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _workers(pid: int) -> list[int]:
    """The daemon's processing worker processes (by their command line, not the resource tracker)."""
    workers = []
    for child in _children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command:
            workers.append(child)
    return workers


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("maria@customer.example", ["support@smilepass.example"], make_mail(subject))


def _titles(config: Path) -> set[str]:
    return {ticket["title"] for ticket in ticketgate("tickets", "list", "--json", config=config).json()}


def _start(tmp_path: Path, database_url: str, processing: str) -> tuple[ServeProcess, Path]:
    port = free_port()
    config = write_config(
        tmp_path, database_url, f"\n[processing]\n{processing}\n", listen=f"127.0.0.1:{port}"
    )
    return ServeProcess(["--config", str(config)], tmp_path, port), config


@pytest.mark.parametrize(("processes", "nice"), [(1, None), (2, 3)])
def test_mail_becomes_tickets_in_worker_processes(
    tmp_path: Path, database_url: str, processes: int, nice: int | None
) -> None:
    chosen = "" if nice is None else f"\nnice = {nice}"
    serve, config = _start(tmp_path, database_url, f"processes = {processes}{chosen}")
    try:
        workers = wait_for(
            lambda: len(_workers(serve.process.pid)) == processes and _workers(serve.process.pid), timeout=20
        )
        # processing.nice (default 5 on PostgreSQL, 0 on SQLite): below serve's CPU priority, so
        # intake goes first on busy cores.
        lowered = nice if nice is not None else 0 if database_url.startswith("sqlite") else 5
        serve_priority = os.getpriority(os.PRIO_PROCESS, serve.process.pid)
        wait_for(
            lambda: all(os.getpriority(os.PRIO_PROCESS, pid) == serve_priority + lowered for pid in workers),
            timeout=20,
        )
        subjects = {f"Refund question number {n}" for n in range(6)}
        for subject in subjects:
            _send(serve.port, subject)
        wait_for(lambda: _titles(config) >= subjects, timeout=20)
        assert serve.stop() == 0
    finally:
        serve.stop()
    assert not [pid for pid in workers if _alive(pid)], "a worker process outlived the daemon's SIGTERM"
    log = serve.output()
    assert log.count("processing worker process") >= processes
    assert "Traceback" not in log


def test_processes_zero_processes_on_threads_of_serve(tmp_path: Path, database_url: str) -> None:
    serve, config = _start(tmp_path, database_url, "processes = 0\nworkers = 2")
    try:
        # serve logs "ready" once everything it starts at start-up is started, worker processes too
        wait_for(lambda: "gateway.daemon.main: ready" in serve.output(), timeout=20)
        assert _workers(serve.process.pid) == []
        _send(serve.port, "Card declined twice")
        wait_for(lambda: "Card declined twice" in _titles(config), timeout=20)
        assert serve.stop() == 0
    finally:
        serve.stop()


def test_a_killed_worker_is_replaced_and_no_mail_is_lost(tmp_path: Path, database_url: str) -> None:
    serve, config = _start(tmp_path, database_url, "processes = 1")
    try:
        [first] = wait_for(lambda: _workers(serve.process.pid), timeout=20)
        os.kill(first, signal.SIGKILL)
        _send(serve.port, "Sent while the worker was dead")  # accepted: intake does not need it
        [second] = wait_for(lambda: [pid for pid in _workers(serve.process.pid) if pid != first], timeout=20)
        wait_for(lambda: "Sent while the worker was dead" in _titles(config), timeout=20)
        assert second != first
        assert serve.stop() == 0
    finally:
        serve.stop()
    assert "exited with -9; starting it again in 1s" in serve.output()


def test_a_worker_does_not_outlive_a_killed_daemon(tmp_path: Path, database_url: str) -> None:
    serve, config = _start(tmp_path, database_url, "processes = 1")
    try:
        [worker] = wait_for(lambda: _workers(serve.process.pid), timeout=20)
        # Its mail processed: the worker is past its start-up (imports, runtime) and in the loop
        # that watches the daemon. Killed earlier, a worker still starting on a loaded machine took
        # longer than the wait below to get there and notice.
        _send(serve.port, "Processed before the daemon is killed")
        wait_for(lambda: "Processed before the daemon is killed" in _titles(config), timeout=20)
        serve.process.kill()
        serve.process.wait(timeout=10)
        wait_for(lambda: not _alive(worker), timeout=20)
    finally:
        serve.stop()
    assert "the daemon (pid" in serve.output()


def test_serve_exits_and_leaves_no_worker_when_its_port_is_taken(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path, database_url, "\n[processing]\nprocesses = 1\n", listen=f"127.0.0.1:{port}"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")}
        serve = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        workers: set[int] = set()
        deadline = time.monotonic() + 30
        while serve.poll() is None and time.monotonic() < deadline:
            workers.update(_workers(serve.pid))
            time.sleep(0.05)
        if serve.poll() is None:
            serve.kill()
        output = serve.communicate(timeout=10)[0].decode(errors="replace")
    assert serve.returncode not in (None, 0, -9), output  # it gave up by itself, with an error
    wait_for(lambda: not [pid for pid in workers if _alive(pid)], timeout=10)
