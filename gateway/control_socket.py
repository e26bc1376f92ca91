"""Where `serve`'s control socket is: worked out the same way by `serve` (which listens there) and
by every `ticketgate` command (which asks there first), from the same three things: the config
file, the database URL and the working folder. Standard library only: a command reads this before
it imports anything else (gateway/cli/control_client.py), so it must cost next to nothing.

`control.socket` names the path; left out, the socket is on by default, where the embedded
defaults put the rest of a deployment's files:

- the folder is the SQLite database's own folder (where SQLite keeps its `-wal` and `-shm` files
  and the store its `-writelock`), so a command finds the socket from any working folder exactly
  when it would open the same database file; with PostgreSQL (or an in-memory SQLite) it is the
  working folder, as for `./blobs` and `./outgoing`;
- the name is `ticketgate-` and the first 12 hex digits of the SHA-256 of the config file's real
  path (of the empty string for the embedded defaults), as ssh's `ControlPath %C` is a hash of what
  the connection is: two `serve`s on one host with different config files never share a socket,
  even when they share a database and a folder (several nodes of one deployment on one host).

`control.socket = ""` turns the socket off. See docs/performance/latency-and-cli.md.
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import unquote

# gateway.config.sections.gateway's DEFAULT_DATABASE_URL, spelled here so a command reads none of
# gateway.config first (tests/unit/test_control_socket_path.py holds the two equal).
DEFAULT_DATABASE_URL = "sqlite:///ticketgate.db"


def socket_path(
    configured: str | None, config_file: str | os.PathLike[str] | None, database_url: str
) -> str | None:
    """The control socket's path, relative to the working folder when the database's is; None
    when `control.socket = ""` turned it off. `configured`: `control.socket` as written (None when
    absent); `config_file`: the config file read (None for the embedded defaults); `database_url`:
    the database used, `$TICKETGATE_DATABASE_URL` already applied."""
    if configured is not None:
        return configured.strip() or None
    identity = os.path.realpath(config_file) if config_file is not None else ""
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return os.path.join(sqlite_folder(database_url), f"ticketgate-{digest}.sock")


def sqlite_folder(database_url: str) -> str:
    """The folder of the SQLite database file `database_url` names, as SQLAlchemy reads the URL
    ("" for the working folder); also "" when it names no file (PostgreSQL, `:memory:`, `file:` URIs)."""
    scheme, separator, rest = database_url.strip().partition("://")
    if not separator or scheme.partition("+")[0].lower() != "sqlite":
        return ""
    database = unquote(rest.partition("/")[2].partition("?")[0])
    if database in ("", ":memory:") or database.startswith("file:"):
        return ""
    return os.path.dirname(database)
