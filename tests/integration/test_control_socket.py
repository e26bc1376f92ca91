"""A running `serve` answers the read-only commands over its control socket (`control.socket`),
and what they print and their exit codes are exactly what the command prints when it runs alone.

"Answered by the daemon" is observed as the command's process never importing SQLAlchemy; "runs
alone" is the same command with `TICKETGATE_DATABASE_URL` set to the same database, which the
daemon does not answer (another database override than its own) and the command then runs itself.

The socket is on by default, in serve's working folder and named after the config file
(gateway/control_socket.py): the configs here name no `[control]` unless the test is about it, and
each command runs in the serve's working folder (the config's folder, unless a test says).
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

from gateway.cli.control_client import answer_by_daemon, is_read_only
from gateway.cli.main import run
from gateway.config import embedded_defaults
from gateway.control_socket import socket_path
from gateway.daemon.control import start_control
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
        _wait_for_socket(default_socket(config), serve)
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


def default_socket(config: Path, folder: Path | None = None) -> Path:
    """The socket a serve of `config` running in `folder` (the config's own) listens on."""
    path = socket_path(None, config)
    assert path is not None
    return (folder or config.parent) / path


def _wait_for_socket(path: Path, serve: ServeProcess) -> None:
    """The control socket opens a moment after SMTP (ServeProcess waits for SMTP only)."""
    deadline = time.monotonic() + 30
    while not (path.exists() and stat.S_ISSOCK(path.stat().st_mode)):
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.05)


def _run(
    config: Path, *argv: str, database: str | None = None, cwd: Path | None = None
) -> tuple[int, str, str, bool]:
    """The command's exit code, output, error output, and whether it imported SQLAlchemy (ran
    alone); run in `cwd`, the config's folder unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")}
    if database is not None:
        env["TICKETGATE_DATABASE_URL"] = database
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv, "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=120, cwd=cwd or config.parent,
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


def _start(config: Path, port: int, log: str = "serve.log") -> ServeProcess:
    """A serve in the config's folder that has finished starting: its log says "ready" once the
    control socket is open (or was not opened)."""
    serve = ServeProcess(["--config", str(config)], config.parent, port, log=log)
    deadline = time.monotonic() + 30
    while " ready" not in serve.output():
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.05)
    return serve


def test_the_default_socket_is_private_and_removed_when_serve_stops(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    config, port = _config(tmp_path, "ticketgate.toml", database)
    serve = _start(config, port)
    path = default_socket(config)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert f"answering read-only commands on {path}" in serve.output()
        assert _run(config, "tickets", "list")[::3] == (0, False)
        # From another folder the command does not look there, and runs alone (same output)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        assert _run(config, "tickets", "list", cwd=elsewhere)[::3] == (0, True)
    finally:
        assert serve.stop() == 0
    assert not path.exists()
    assert _run(config, "tickets", "list")[::3] == (0, True)  # no serve: the command runs alone


def test_the_embedded_defaults_get_a_socket_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A serve with no config file at all (the README's first command) answers a command run in
    its folder with no config either, and no other: the control server here is serve's own, on the
    embedded defaults, in this process (a serve process would need the defaults' fixed port)."""
    monkeypatch.chdir(tmp_path)
    for name in ("TICKETGATE_CONFIG", "TICKETGATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert ticketgate("db", "upgrade", cwd=tmp_path).returncode == 0
    alone = ticketgate("status", cwd=tmp_path)
    assert alone.returncode == 0
    server = start_control(embedded_defaults(), (run, is_read_only))
    assert server is not None
    try:
        assert (tmp_path / str(socket_path(None, None))).exists()
        capsys.readouterr()
        assert answer_by_daemon(["status"]) == 0
        assert capsys.readouterr() == (alone.stdout, alone.stderr)
        (tmp_path / "other").mkdir()
        other = write_config(tmp_path / "other", f"sqlite:///{tmp_path / 'ticketgate.db'}")
        assert answer_by_daemon(["status", "--config", str(other)]) is None  # another config: not here
        # (another database override is declined too: every "alone" run above is one)
    finally:
        server.stop()
    assert not list(tmp_path.glob("*.sock"))


def _leave_stale_socket(path: Path) -> None:
    """A socket file nobody listens on, as a serve that was killed leaves it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    assert stat.S_ISSOCK(path.stat().st_mode)


def test_an_empty_control_socket_turns_it_off(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    config, port = _config(tmp_path, "ticketgate.toml", database, '\n[control]\nsocket = ""\n')
    serve = _start(config, port)
    try:
        assert not list(tmp_path.rglob("*.sock"))
        assert "read-only commands" not in serve.output()
        assert _run(config, "tickets", "list")[::3] == (0, True)
    finally:
        assert serve.stop() == 0


def test_a_stale_socket_costs_a_command_no_wait_and_serve_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    config, port = _config(tmp_path, "ticketgate.toml", database)
    path = default_socket(config)
    _leave_stale_socket(path)
    # Nobody listens: the connect is refused at once, not after the client's connect timeout
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("gateway.cli.control_client.CONNECT_SECONDS", 60.0)
    started = time.monotonic()
    assert answer_by_daemon(["tickets", "list", "--config", str(config)]) is None
    assert time.monotonic() - started < 30
    serve = _start(config, port)
    try:
        assert f"answering read-only commands on {path}" in serve.output()
        assert _run(config, "tickets", "list")[::3] == (0, False)
    finally:
        assert serve.stop() == 0
    assert not path.exists()


def test_two_serves_in_one_folder_with_different_configs_each_answer_their_own(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    first, first_port = _config(tmp_path, "node-a.toml", database)
    second, second_port = _config(tmp_path, "node-b.toml", database)
    a = _start(first, first_port, log="a.log")
    b = _start(second, second_port, log="b.log")
    try:
        a_socket, b_socket = default_socket(first), default_socket(second)
        assert a_socket != b_socket
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
    a = _start(first, first_port, log="a.log")
    try:
        b = _start(second, second_port, log="b.log")
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
