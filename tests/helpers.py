"""Small helpers the tests share: a config file for a test, and running the real `ticketgate` command."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import pytest

TEST_SECRET = "test-secret-0123456789abcdef"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# For a test that takes `database_url` but is about something the store does not decide (a verdict
# on headers, an argument refused before any write, TLS with a relay): it runs on SQLite only,
# instead of once per database. Tests of what the store does (counts, claims, order, time zones,
# concurrency) keep both.
STORE_DOES_NOT_MATTER = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def write_config(
    tmp_path: Path, database_url: str, extra: str = "", *, listen: str = "127.0.0.1:2525"
) -> Path:
    """A SmilePass-like config in `tmp_path`, with its database, blob store and outbox there too."""
    path = tmp_path / "ticketgate.toml"
    path.write_text(
        f"""
[gateway]
addresses = ["support@smilepass.example", "billing@smilepass.example"]
ticket_prefix = "SP"
secret = "{TEST_SECRET}"

[database]
url = "{database_url}"

[smtp]
listen = "{listen}"

[outbound]
relay = "dir:{tmp_path / "outgoing"}"
from = "SmilePass Support <support@smilepass.example>"

[staff]
addresses = ["ana@smilepass.example"]
triage = "triage@smilepass.example"

[storage]
blob_dir = "{tmp_path / "blobs"}"

[[customers]]
match = "bigcorp.example"
tier = "Enterprise"
account_manager = "kim@smilepass.example"

[[customers]]
match = "pro@customer.example"
tier = "Pro"
{extra}
""",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def ticketgate(
    *args: str, config: Path | None = None, stdin: bytes | None = None, cwd: Path | None = None
) -> Run:
    """Run `ticketgate ARGS` and capture what it prints, in this process (see `ticketgate_in_process`).

    For what a command does. A test about the process itself (the installed script, start-up,
    signals, exit on a killed parent) calls `ticketgate_process`."""
    return ticketgate_in_process(*args, config=config, stdin=stdin, cwd=cwd)


def ticketgate_process(
    *args: str, config: Path | None = None, stdin: bytes | None = None, cwd: Path | None = None
) -> Run:
    """Run the installed `ticketgate` command as its own process (as a user would)."""
    command = [sys.executable, "-m", "gateway.cli.main", *args]
    if config is not None:
        command += ["--config", str(config)]
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    done = subprocess.run(command, input=stdin, capture_output=True, cwd=cwd, env=env, timeout=120)
    return Run(
        done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    )


_CLEARED_ENV = ("TICKETGATE_CONFIG", "TICKETGATE_DATABASE_URL")


def ticketgate_in_process(
    *args: str, config: Path | None = None, stdin: bytes | None = None, cwd: Path | None = None
) -> Run:
    """`gateway.cli.main.main(ARGS)` in this process, as `ticketgate_process` would see it: its
    stdin, stdout and stderr are byte streams of their own, a usage error's SystemExit and an
    escaped exception (a traceback on stderr, exit code 1) become the exit code.

    What the command could leave behind for the next test is put back: the root logger's
    handlers and level and the levels of the loggers it sets (`logging.basicConfig` would
    otherwise keep writing to this run's stderr), the environment (without TICKETGATE_CONFIG and
    TICKETGATE_DATABASE_URL, as for the process), the working directory and the warning filters
    (a warning is printed on stderr, as a process prints it, not raised by pytest's "error")."""
    from gateway.cli.main import main

    argv = [*args, *(["--config", str(config)] if config is not None else [])]
    out, err = io.BytesIO(), io.BytesIO()
    new_stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    new_stderr = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
    new_stdin = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    touched = [logging.getLogger(name) for name in ("gateway", "mailparser")]
    saved_levels = [logger.level for logger in touched]
    try:
        for key in _CLEARED_ENV:
            os.environ.pop(key, None)
        if cwd is not None:
            os.chdir(cwd)
        root.handlers = []
        sys.stdin, sys.stdout, sys.stderr = new_stdin, new_stdout, new_stderr
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            try:
                code: object = main(argv)
            except SystemExit as exc:
                code = exc.code
            except Exception:
                traceback.print_exc()
                code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        for handler in root.handlers:
            if handler not in saved_root[0]:
                handler.close()
        root.handlers, root.level = saved_root
        for logger, level in zip(touched, saved_levels, strict=True):
            logger.setLevel(level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    if code is None:
        returncode = 0
    elif isinstance(code, int):
        returncode = code
    else:  # SystemExit("message"): printed on stderr, exit code 1
        err.write(f"{code}\n".encode())
        returncode = 1
    return Run(
        returncode, out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")
    )


def relayed_mails(folder: Path) -> list[Path]:
    """The mails the folder relay (`dir:`) has published in `folder`, in name order: its finished
    `NNNNNNNN.eml` files, never the `.tmp-*.eml` it writes first and renames (read while `serve`
    runs, such a file can vanish between listing and reading)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob("*.eml") if not path.name.startswith("."))


def make_mail(
    subject: str = "Payment plan ADD button does nothing",
    body: str = "When I click ADD on the payment plan page nothing happens.\n",
    *,
    sender: str = "Maria Lopez <maria@customer.example>",
    to: str = "support@smilepass.example",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A plain mail as a mail client would write it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain="customer.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


# Test servers listen below the kernel's ephemeral ports (32768 and up on Linux), which bind(("", 0))
# and outgoing connections take from: a port handed out here cannot be taken by them before the
# test's server binds it. Each pytest-xdist worker draws from a slice of its own.
_PORT_RANGE = (10_000, 32_000)
_handed_out: set[int] = set()
_port_choice = random.SystemRandom()  # not the `random` module hypothesis seeds per example


def free_port() -> int:
    """A loopback port nobody listens on right now, never handed out twice in this process and
    never the same as another xdist worker's (the suite runs with `-n 2`)."""
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0") % workers
    span = (_PORT_RANGE[1] - _PORT_RANGE[0]) // workers
    low = _PORT_RANGE[0] + worker * span
    for _ in range(1000):
        port = _port_choice.randrange(low, low + span)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {low}-{low + span - 1}")


class ServeProcess:
    """`ticketgate serve` as a subprocess, started and waited for until it accepts SMTP on `port`;
    `stop()` sends SIGTERM and returns the exit code; `output()` is what it logged."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        port: int,
        env: dict[str, str] | None = None,
        *,
        own_group: bool = False,
        log: str = "serve.log",
    ) -> None:
        """`own_group`: start it in a process group of its own, so `kill_group` reaches its
        worker processes too (a whole node dying at once). `log`: the file in `cwd` it logs to
        (two serves in one folder need one each)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")} | (env or {})
        self.log = cwd / log
        self._log_handle = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "serve", *args],
            cwd=cwd,
            env=env,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )
        self.port = port
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"serve did not listen on {port}:\n{self.output()}")

    def output(self) -> str:
        if not self._log_handle.closed:
            self._log_handle.flush()
        return self.log.read_text(errors="replace")

    def kill_group(self) -> None:
        """SIGKILL the daemon and its worker processes at once (needs `own_group`)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log_handle.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            self._log_handle.close()
