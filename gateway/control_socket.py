"""Where `serve`'s control socket is: worked out the same way by `serve` (which listens there) and
by every `ticketgate` command (which asks there first), from the config file alone. Standard
library only, and cheap: a command reads this before it imports anything else
(gateway/cli/control_client.py).

`control.socket` names the path (relative paths are relative to the working folder, as every path
in the config is); `control.socket = ""` turns the socket off. Left out, the socket is on, where
the embedded defaults put a deployment's files (`ticketgate.db`, `./blobs`, `./outgoing`): in the
working folder, named `ticketgate-` and the CRC-32 of the config file's real path in hex (of the
empty string for the embedded defaults), as ssh's `ControlPath %C` is a hash of what the
connection is. So two `serve`s on one host with different config files never share a socket, even
in one folder; a command finds its serve's socket when it runs in the serve's working folder with
the same config (the systemd unit's `WorkingDirectory`, the ticketgate user's home). A command run
elsewhere, or whose look finds nobody, runs on its own. A CRC is not a secure hash and needs not be:
two configs whose names collide make the second `serve` leave the socket to the first (and its
commands run on their own), never a wrong answer, because the daemon answers only a command that
names its own config file and database (gateway/daemon/control.py).

See docs/performance/latency-and-cli.md.
"""

from __future__ import annotations

import os
import zlib

KEY = b"socket"  # a config whose bytes lack it names no `control.socket`: no TOML parse needed


def socket_path(configured: str | None, config_file: str | os.PathLike[str] | None) -> str | None:
    """The control socket's path; None when `control.socket = ""` turned it off. `configured`:
    `control.socket` as written (None when absent); `config_file`: the config file read (None for
    the embedded defaults)."""
    if configured is not None:
        return configured.strip() or None
    identity = os.path.realpath(config_file) if config_file is not None else ""
    return f"ticketgate-{zlib.crc32(os.fsencode(identity)):08x}.sock"
