"""A running `serve` answers the read-only commands over its control socket (`control.socket`),
and what they print and their exit codes are exactly what the command prints when it runs alone.

"Answered by the daemon" is observed as the command's process never importing SQLAlchemy; "runs
alone" is the same command with `TICKETGATE_DATABASE_URL` set to the same database, which the
daemon does not answer (another database override than its own) and the command then runs itself.
"""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    """A serve with a control socket, and two tickets in its SQLite database."""
    port = free_port()
    database = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    extra = f'\n[control]\nsocket = "{tmp_path / "control.sock"}"\n'
    config = write_config(tmp_path, database, extra, listen=f"127.0.0.1:{port}")
    serve = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
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
