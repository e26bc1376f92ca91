"""Addresses to listen on and relays to send through, taken apart: `HOST:PORT` and relay URLs.

Used by the section readers (which turn a ValueError into a problem under the key) and by
`OutboundSettings.relay_target`, so the one parser decides what a relay is.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from gateway.config.validators import is_host


@dataclass(frozen=True)
class RelayTarget:
    """`outbound.relay` taken apart: a folder to write mails into, or an SMTP server."""

    scheme: Literal["dir", "smtp", "smtps"]
    path: str | None = None  # for "dir"
    host: str | None = None  # for "smtp" / "smtps"
    port: int | None = None


def parse_relay(relay: str) -> RelayTarget:
    """`dir:PATH`, `smtp://host[:port]` or `smtps://host[:port]`; ValueError says what is wrong."""
    expected = '"dir:PATH", "smtp://HOST:PORT" or "smtps://HOST:PORT"'
    if relay.startswith("dir:"):
        path = relay[len("dir:") :].strip()
        if not path:
            raise ValueError(f'expected a folder after "dir:", such as "dir:./outgoing", got {relay!r}')
        return RelayTarget(scheme="dir", path=path)
    scheme = relay.partition("://")[0].lower() if "://" in relay else ""
    if scheme not in ("smtp", "smtps"):
        raise ValueError(f"expected {expected}, got {relay!r}")
    parts = urlsplit(relay)
    if parts.username is not None or parts.password is not None:
        raise ValueError("put the login in outbound.user and outbound.password, not in the relay URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"expected {expected} with nothing after the port, got {relay!r}")
    host = parts.hostname
    if not host or not is_host(host):
        raise ValueError(f"expected {expected} with a valid host name, got {relay!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"port must be a number from 1 to 65535, got {relay!r}") from None
    if port == 0:
        raise ValueError(f"port must be a number from 1 to 65535, got {relay!r}")
    if port is None:
        port = 465 if scheme == "smtps" else 25
    return RelayTarget(scheme="smtps" if scheme == "smtps" else "smtp", host=host, port=port)


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port); ValueError says what is wrong."""
    bracketed = re.fullmatch(r"\[([^\]]*)\]:([^:]*)", listen)
    if bracketed:
        host, port_text = bracketed.groups()
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address (in {listen!r})") from None
    else:
        host, sep, port_text = listen.rpartition(":")
        if not sep or not host:
            raise ValueError(f'expected HOST:PORT such as "127.0.0.1:2525" or "[::1]:2525", got {listen!r}')
        if ":" in host:
            raise ValueError(f'an IPv6 address needs brackets, such as "[::1]:2525", got {listen!r}')
        if not is_host(host):
            raise ValueError(f"{host!r} is not a valid host name or IP address (in {listen!r})")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, got {port_text!r} (in {listen!r})")
    return host, int(port_text)
