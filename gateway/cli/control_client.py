"""Asks a running `serve` to answer a read-only command over its control socket
(gateway/daemon/control.py), before this process imports SQLAlchemy: the answer costs a connect
and the daemon's warm query, not ~20x `python -c pass` of imports (docs/performance/latency-and-cli.md).

It needs only the standard library, and little of it: the config file is found as `load_settings`
finds it (`--config`, `TICKETGATE_CONFIG`, ./ticketgate.toml, else the embedded defaults), the
socket's path is worked out as `serve` works it out (gateway/control_socket.py: on by default),
and the file is parsed as TOML only when its bytes hold the word `socket` (parsing costs as many
instructions as the interpreter's start; most configs name no `control.socket`). Any doubt (the
socket turned off, nobody listening, another config or database, a command the daemon does not
answer, a malformed reply) returns None, and the command runs here as it always did. When no
`serve` runs, the socket file is missing or nobody listens on it, and the connect fails at once:
the fallback costs no wait.
"""

from __future__ import annotations

import _socket  # socket.py's own base: importing socket.py costs ~15 % of `python -c pass`
import json
import os
import sys
from collections.abc import Sequence

from gateway.control_socket import KEY, socket_path

# (command, action) pairs a running `serve` answers; everything else runs in this process.
READ_ONLY = frozenset(
    {
        ("tickets", "list"),
        ("tickets", "show"),
        ("status", None),
        ("inbox", "list"),
        ("outbox", "list"),
        ("quarantine", "list"),
        ("undeliverable", "list"),
    }
)
CONNECT_SECONDS = 0.5
ANSWER_SECONDS = 120.0
CONFIG_ENV = "TICKETGATE_CONFIG"  # gateway.config.loading's, spelled here to import nothing of it
DATABASE_URL_ENV = "TICKETGATE_DATABASE_URL"


def is_read_only(argv: Sequence[str]) -> bool:
    """Whether `argv` (without `--config`) names a command in READ_ONLY; help is never sent."""
    if any(word in ("-h", "--help") for word in argv):
        return False
    words = [word for word in argv if not word.startswith("-")]
    if not words:
        return False
    if (words[0], None) in READ_ONLY:
        return True
    return len(words) > 1 and (words[0], words[1]) in READ_ONLY


def answer_by_daemon(argv: Sequence[str]) -> int | None:
    """Run `argv` in the daemon when it can answer it: what it printed is printed here and its exit
    code returned; None when this process must run the command itself."""
    rest, config = _without_config(list(argv))
    if not is_read_only(rest):
        return None
    path = _socket_path(config)
    if path is None:
        return None
    request = {
        "argv": rest,
        "config": os.path.realpath(config) if config is not None else None,
        "database_url": os.environ.get(DATABASE_URL_ENV, "").strip() or None,
    }
    try:
        reply = json.loads(_ask(path, json.dumps(request).encode("utf-8") + b"\n"))
    except (OSError, ValueError):
        return None
    if not isinstance(reply, dict) or not reply.get("answered") or not isinstance(reply.get("code"), int):
        return None
    sys.stdout.write(str(reply.get("stdout", "")))
    sys.stderr.write(str(reply.get("stderr", "")))
    return int(reply["code"])


def _ask(path: str, request: bytes) -> bytes:
    """The daemon's one-line answer to `request`; OSError when nobody answers (at once when the
    file is missing or nobody listens: ENOENT, ECONNREFUSED)."""
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        connection.settimeout(CONNECT_SECONDS)
        connection.connect(path)
        connection.settimeout(ANSWER_SECONDS)
        connection.sendall(request)
        chunks: list[bytes] = []
        while not (chunks and chunks[-1].endswith(b"\n")):
            chunk = connection.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        connection.close()


def _without_config(argv: list[str]) -> tuple[list[str], str | None]:
    """`argv` without its `--config` (the daemon runs on its own, which must be this one), and the
    config file this command would read."""
    rest: list[str] = []
    config: str | None = None
    words = iter(argv)
    for word in words:
        if word == "--config":
            config = next(words, None)
        elif word.startswith("--config="):
            config = word.removeprefix("--config=")
        else:
            rest.append(word)
    if config is None:
        from_env = os.environ.get(CONFIG_ENV, "").strip()
        config = from_env or ("ticketgate.toml" if os.path.isfile("ticketgate.toml") else None)
    return rest, config


def _socket_path(config: str | None) -> str | None:
    """Where `serve` on this config listens, as it works it out; None when the socket is turned
    off, or the config cannot be read or holds a wrong type there (the command, run here, says so)."""
    if config is None:
        return socket_path(None, None)
    try:
        with open(config, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if KEY not in data:  # no `control.socket`, however written: the default
        return socket_path(None, config)
    import tomllib  # only now: its import costs as much as the interpreter's start

    try:
        control = tomllib.loads(data.decode("utf-8")).get("control", {})
    except ValueError:  # tomllib.TOMLDecodeError, UnicodeDecodeError
        return None
    configured = control.get("socket") if isinstance(control, dict) else 0
    if not (configured is None or isinstance(configured, str)):
        return None
    return socket_path(configured, config)
