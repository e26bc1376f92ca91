"""`serve` answers read-only commands on a local Unix socket (`control.socket`), as postqueue and
doveadm talk to their daemons: a command started fresh spends ~20x `python -c pass` importing
SQLAlchemy and configuring its mappers before it reads a row, while the daemon has all of that
warm (docs/performance/latency-and-cli.md). The command's client (gateway/cli/control_client.py)
sends its arguments; the daemon runs the very same `ticketgate` code on them and sends back what
it printed and its exit code, so the output is identical by construction.

Only the read-only commands the command line names (gateway/cli/control_client.py, `READ_ONLY`)
are answered, and only for a client that named the
same config file and database as the daemon's own; anything else is answered "not here" and the
client runs the command itself, as it always did. The socket is made with mode 0600 (only the
daemon's user may connect: whoever may read the config and database may read the tickets anyway).
Each request runs on a thread of its own, never on the SMTP event loop.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socketserver
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from gateway.config import Settings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
# What the command line hands `serve`: its `main`, and which arguments name a read-only command.
CommandLine = tuple[Callable[[list[str]], int], Callable[[list[str]], bool]]


class _PerThread:
    """sys.stdout / sys.stderr while the control socket runs: what a request's thread prints goes
    to its own buffer, everything else to the stream it replaced (whose attributes, from
    `encoding` to `fileno`, it answers for)."""

    def __init__(self, stream: TextIO, local: threading.local, name: str) -> None:
        self._stream = stream
        self._local = local
        self._name = name

    def _target(self) -> TextIO:
        return getattr(self._local, self._name, None) or self._stream

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer … of the real stream
        return getattr(self._stream, name)


class ControlServer:
    """The control socket of one `serve`: started after the runtime, stopped before it closes."""

    def __init__(self, settings: Settings, path: str, command_line: CommandLine) -> None:
        self._settings = settings
        self._main, self._is_read_only = command_line
        self._path = path
        self._local = threading.local()
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None
        self._streams: tuple[TextIO, TextIO] | None = None

    def start(self) -> None:
        _remove_stale(self._path)
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                owner._answer(self.rfile, self.wfile)

        old_umask = os.umask(0o077)  # the socket file: mode 0600
        try:
            self._server = socketserver.ThreadingUnixStreamServer(self._path, Handler)
        finally:
            os.umask(old_umask)
        self._server.daemon_threads = True
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _PerThread(sys.stdout, self._local, "out")  # type: ignore[assignment]
        sys.stderr = _PerThread(sys.stderr, self._local, "err")  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._server.serve_forever, name="control", daemon=True)
        self._thread.start()
        log.info("answering read-only commands on %s", self._path)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
        with contextlib.suppress(OSError):
            os.unlink(self._path)

    def _answer(self, rfile: Any, wfile: Any) -> None:
        try:
            request = json.loads(rfile.readline(MAX_REQUEST_BYTES))
            argv = [str(word) for word in request["argv"]]
            config, database = request.get("config"), request.get("database_url")
        except (ValueError, KeyError, TypeError):
            wfile.write(b'{"answered": false}\n')
            return
        if not (self._is_read_only(argv) and self._same_deployment(config, database)):
            wfile.write(b'{"answered": false}\n')
            return
        code, out, err = self._run(argv)
        reply = {"answered": code is not None, "code": code, "stdout": out, "stderr": err}
        wfile.write(json.dumps(reply, ensure_ascii=False).encode("utf-8") + b"\n")

    def _same_deployment(self, config: Any, database: Any) -> bool:
        """The client read the daemon's config file and sees the same database override."""
        source = self._settings.source
        if source is None or not isinstance(config, str):
            return False
        return os.path.realpath(config) == os.path.realpath(source) and (database or None) == (
            os.environ.get("TICKETGATE_DATABASE_URL", "").strip() or None
        )

    def _run(self, argv: list[str]) -> tuple[int | None, str, str]:
        """The command's exit code and what it printed; code None when it failed unexpectedly (the
        client then runs it itself and meets the error there, as it would have)."""
        assert self._settings.source is not None
        out, err = io.StringIO(), io.StringIO()
        self._local.out, self._local.err = out, err
        try:
            code: int | None = self._main([*argv, "--config", str(self._settings.source)])
        except SystemExit as exc:  # argparse refusing the arguments: its message is in `err`
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:
            log.exception("control socket: %s failed; the client runs it itself", " ".join(argv[:2]))
            code = None
        finally:
            self._local.out = self._local.err = None
        return code, out.getvalue(), err.getvalue()


def _remove_stale(path: str) -> None:
    """A socket file left by a serve that was killed: nobody answers on it any more."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)


def start_control(settings: Settings, command_line: CommandLine | None) -> ControlServer | None:
    """The control socket `control.socket` names, started; None when it is off or cannot be made."""
    if settings.control.socket is None or command_line is None:
        return None
    server = ControlServer(settings, settings.control.socket, command_line)
    try:
        server.start()
    except OSError as exc:  # commands still work, started fresh
        log.error("cannot answer commands on %s: %s", settings.control.socket, exc)
        return None
    return server
