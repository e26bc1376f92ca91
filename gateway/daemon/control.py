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

It is on by default, in the working folder under a name gateway/control_socket.py works out from
the config file's path (`control.socket = ""`: off). A socket file nobody answers on (a `serve`
that was killed) is replaced; one a live `serve` answers on is left to it (this one then answers
nothing, and says so), and at the stop only the socket this `serve` made is removed.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import socketserver
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from gateway.config import Settings
from gateway.control_socket import socket_path

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
PROBE_SECONDS = 1.0  # a live serve's socket answers a connect at once, even when busy
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
        self._made: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket file made here

    def start(self) -> None:
        """Listen on the socket; FileExistsError when a live serve already answers there."""
        if not _make_way(self._path):
            raise FileExistsError(f"another serve answers on {self._path} (or it is another user's)")
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):  # a client that left before its answer
                    owner._answer(self.rfile, self.wfile)

        old_umask = os.umask(0o077)  # the socket file is the daemon user's alone from the start
        try:
            self._server = socketserver.ThreadingUnixStreamServer(self._path, Handler)
        finally:
            os.umask(old_umask)
        os.chmod(self._path, 0o600)  # 0700 by the umask; a socket's execute bit means nothing
        made = os.stat(self._path)
        self._made = (made.st_dev, made.st_ino)
        self._server.daemon_threads = True
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _PerThread(sys.stdout, self._local, "out")  # type: ignore[assignment]
        sys.stderr = _PerThread(sys.stderr, self._local, "err")  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._server.serve_forever, name="control", daemon=True)
        self._thread.start()
        log.info("answering read-only commands on %s", os.path.abspath(self._path))

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
        with contextlib.suppress(OSError):
            found = os.stat(self._path)
            if (found.st_dev, found.st_ino) == self._made:  # not another serve's, made since
                os.unlink(self._path)

    def _answer(self, rfile: Any, wfile: Any) -> None:
        line = rfile.readline(MAX_REQUEST_BYTES)
        if not line:  # a connect and nothing more: another serve asking whether this one lives
            return
        try:
            request = json.loads(line)
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
        """The client read the daemon's config file (or, like it, none: the embedded defaults) and
        sees the same database override."""
        source = self._settings.source
        if source is None:
            same_config = config is None
        else:
            same_config = isinstance(config, str) and os.path.realpath(config) == os.path.realpath(source)
        return same_config and (database or None) == (
            os.environ.get("TICKETGATE_DATABASE_URL", "").strip() or None
        )

    def _run(self, argv: list[str]) -> tuple[int | None, str, str]:
        """The command's exit code and what it printed; code None when it failed unexpectedly (the
        client then runs it itself and meets the error there, as it would have)."""
        source = self._settings.source
        out, err = io.StringIO(), io.StringIO()
        self._local.out, self._local.err = out, err
        try:
            code: int | None = self._main([*argv, *(["--config", str(source)] if source else [])])
        except SystemExit as exc:  # argparse refusing the arguments: its message is in `err`
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception:
            log.exception("control socket: %s failed; the client runs it itself", " ".join(argv[:2]))
            code = None
        finally:
            self._local.out = self._local.err = None
        return code, out.getvalue(), err.getvalue()


def _make_way(path: str) -> bool:
    """Whether the socket may be made at `path`: nothing is there, or a socket file nobody answers
    on (left by a serve that was killed: it is removed). False when a live serve answers there."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return True  # not a socket: binding fails and says so
    except FileNotFoundError:
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_SECONDS)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):  # nobody listens: stale
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return True
        except OSError:  # busy past the probe's patience, or not ours to open: not stale
            return False
    return False


def start_control(settings: Settings, command_line: CommandLine | None) -> ControlServer | None:
    """The control socket, started (by default at the path gateway/control_socket.py works out);
    None when `control.socket = ""` turned it off or it cannot be made (commands then run on their
    own, as without it)."""
    path = socket_path(settings.control.socket, settings.source)
    if path is None or command_line is None:
        return None
    server = ControlServer(settings, path, command_line)
    try:
        server.start()
    except OSError as exc:  # commands still work, started fresh
        chosen = settings.control.socket is not None
        log.log(
            logging.ERROR if chosen else logging.WARNING,
            "cannot answer commands on %s (control.socket%s): %s; commands run on their own",
            os.path.abspath(path),
            "" if chosen else ", the default",
            exc,
        )
        return None
    return server
