"""A running `serve` answers the read-only commands over its control socket (`control.socket`),
and what they print and their exit codes are exactly what the command prints when it runs alone.

"Answered by the daemon" is observed as the command's process never importing SQLAlchemy; "runs
alone" is the same command with `TICKETGATE_DATABASE_URL` set to the same database, which the
daemon does not answer (another database override than its own) and the command then runs itself.

The socket is on by default, beside the SQLite database and named after the config file
(gateway/control_socket.py): the configs here name no `[control]` unless the test is about it.
"""

from __future__ import annotations

import os
import smtplib
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.control_client import answer_by_daemon
from gateway.control_socket import socket_path
from tests.helpers import ServeProcess, free_port, make_mail, ticketgate, write_config

PROBE = (
    "import sys\n"
    "from gateway.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    "print('SQLALCHEMY' if 'sqlalchemy' in sys.modules else 'NO-SQLALCHEMY', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A serve on its default control socket (no `[control]`), and two tickets in its SQLite database."""
    port = free_port()
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    config = write_config(tmp_path, database, listen=f"127.0.0.1:{port}")
    serve = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        _wait_for_socket(default_socket(config, database), serve)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            for subject in ("Payment plan ADD button does nothing", "Invoice shows the wrong VAT"):
                client.sendmail("maria@customer.example", ["support@smilepass.example"], make_mail(subject))
        deadline = time.monotonic() + 30
        while len(ticketgate("tickets", "list", "--json", config=config).json()) < 2:
            assert time.monotonic() < deadline, serve.output()
            time.sleep(0.2)
        yield config, database
    finally:
        serve.stop()


def default_socket(config: Path, database: str) -> Path:
    path = socket_path(None, config, database)
    assert path is not None
    return Path(path)


def _wait_for_socket(path: Path, serve: ServeProcess) -> None:
    """The control socket opens a moment after SMTP (ServeProcess waits for SMTP only)."""
    deadline = time.monotonic() + 30
    while not (path.exists() and stat.S_ISSOCK(path.stat().st_mode)):
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.05)


def _run(config: Path, *argv: str, database: str | None = None) -> tuple[int, str, str, bool]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")}
    if database is not None:
        env["TICKETGATE_DATABASE_URL"] = database
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    lines = done.stderr.splitlines(keepends=True)  # the probe's marker is the last line
    return done.returncode, done.stdout, "".join(lines[:-1]), lines[-1].strip() == "SQLALCHEMY"


READS = [
    ("tickets", "list"),
    ("tickets", "list", "--json"),
    ("tickets", "list", "--search", "VAT", "--json"),
    ("tickets", "show", "SP-1"),
    ("tickets", "show", "SP-2", "--json"),
    ("tickets", "show", "SP-99"),  # not found: exit 1 and its message
    ("tickets", "list", "--status", "finished"),  # refused: exit 64 and its message
    ("inbox", "list", "--json"),
    ("outbox", "list", "--json"),
    ("undeliverable", "list"),
]


def test_the_daemon_answers_read_commands_exactly_as_the_command_alone(desk: tuple[Path, str]) -> None:
    config, database = desk
    for argv in READS:
        by_daemon = _run(config, *argv)
        alone = _run(config, *argv, database=database)
        # The daemon answered the first (no SQLAlchemy in the command), the command itself the second
        assert by_daemon[3] is False, (argv, by_daemon)
        assert alone[3] is True, (argv, alone)
        # And what the user sees is the same: exit code, standard output, standard error
        assert by_daemon[:3] == alone[:3], argv


def test_status_is_answered_and_commands_that_write_are_not(desk: tuple[Path, str]) -> None:
    config, _ = desk
    code, out, _, imported = _run(config, "status", "--json")
    assert (code, imported) == (0, False)
    assert '"intake"' in out
    # A command that changes something always runs in its own process
    code, _, err, imported = _run(
        config, "tickets", "update", "SP-1", "--note", "looked at it", "--as", "ana@smilepass.example"
    )
    assert (code, imported) == (0, True), err


def _config(folder: Path, name: str, database: str, extra: str = "") -> tuple[Path, int]:
    """A config file called `name` in `folder` (write_config's own name is ticketgate.toml), and
    its SMTP port."""
    port = free_port()
    written = write_config(folder, database, extra, listen=f"127.0.0.1:{port}")
    return written.rename(folder / name), port


def _start(config: Path, port: int, cwd: Path) -> ServeProcess:
    """A serve that has finished starting: its log says "ready" once the control socket is open
    (or was not opened)."""
    cwd.mkdir(exist_ok=True)
    serve = ServeProcess(["--config", str(config)], cwd, port)
    deadline = time.monotonic() + 30
    while " ready" not in serve.output():
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.05)
    return serve


def test_the_default_socket_is_private_and_removed_when_serve_stops(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    config, port = _config(tmp_path, "ticketgate.toml", database)
    serve = _start(config, port, tmp_path / "run")
    try:
        path = default_socket(config, database)
        assert path.parent == tmp_path  # beside the database
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert f"answering read-only commands on {path}" in serve.output()
        assert _run(config, "tickets", "list")[::3] == (0, False)
    finally:
        assert serve.stop() == 0
    assert not path.exists()
    assert _run(config, "tickets", "list")[::3] == (0, True)  # no serve: the command runs alone


def test_an_empty_control_socket_turns_it_off(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    config, port = _config(tmp_path, "ticketgate.toml", database, '\n[control]\nsocket = ""\n')
    serve = _start(config, port, tmp_path / "run")
    try:
        assert not list(tmp_path.rglob("*.sock"))
        assert "read-only commands" not in serve.output()
        assert _run(config, "tickets", "list")[::3] == (0, True)
    finally:
        assert serve.stop() == 0


def _leave_stale_socket(path: Path) -> None:
    """A socket file nobody listens on, as a serve that was killed leaves it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    assert stat.S_ISSOCK(path.stat().st_mode)


def test_a_stale_socket_costs_a_command_no_wait_and_serve_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    config, port = _config(tmp_path, "ticketgate.toml", database)
    path = default_socket(config, database)
    _leave_stale_socket(path)
    # Nobody listens: the connect is refused at once, not after the client's connect timeout
    monkeypatch.setattr("gateway.cli.control_client.CONNECT_SECONDS", 60.0)
    started = time.monotonic()
    assert answer_by_daemon(["tickets", "list", "--config", str(config)]) is None
    assert time.monotonic() - started < 30
    serve = _start(config, port, tmp_path / "run")
    try:
        assert f"answering read-only commands on {path}" in serve.output()
        assert _run(config, "tickets", "list")[::3] == (0, False)
    finally:
        assert serve.stop() == 0
    assert not path.exists()


def test_two_serves_on_one_database_with_different_configs_each_answer_their_own(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    first, first_port = _config(tmp_path, "node-a.toml", database)
    second, second_port = _config(tmp_path, "node-b.toml", database)
    a = _start(first, first_port, tmp_path / "a")
    b = _start(second, second_port, tmp_path / "b")
    try:
        a_socket, b_socket = default_socket(first, database), default_socket(second, database)
        assert a_socket != b_socket and a_socket.parent == b_socket.parent == tmp_path
        assert a_socket.exists() and b_socket.exists()
        assert _run(first, "status")[::3] == (0, False)
        assert _run(second, "status")[::3] == (0, False)
        assert a.stop() == 0
        assert not a_socket.exists() and b_socket.exists()
        assert _run(first, "tickets", "list")[::3] == (0, True)  # its serve is gone: alone
        assert _run(second, "tickets", "list")[::3] == (0, False)
    finally:
        a.stop()
        assert b.stop() == 0
    assert not list(tmp_path.glob("*.sock"))


def test_a_serve_leaves_a_live_serves_socket_alone(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    shared = f'\n[control]\nsocket = "{tmp_path / "shared.sock"}"\n'
    first, first_port = _config(tmp_path, "node-a.toml", database, shared)
    second, second_port = _config(tmp_path, "node-b.toml", database, shared)
    a = _start(first, first_port, tmp_path / "a")
    try:
        b = _start(second, second_port, tmp_path / "b")
        try:
            assert "another serve answers on" in b.output()
            assert _run(first, "tickets", "list")[::3] == (0, False)  # still the first serve's
            assert _run(second, "tickets", "list")[::3] == (0, True)  # declined there: alone
        finally:
            assert b.stop() == 0
        assert (tmp_path / "shared.sock").exists()  # the second did not take it, nor remove it
        assert _run(first, "tickets", "list")[::3] == (0, False)
    finally:
        assert a.stop() == 0
