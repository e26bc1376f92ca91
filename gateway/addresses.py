"""Which addresses are ticketgate's own, and what a `+` sub-address of one of them says.

One matcher serves SMTP RCPT checks, sub-address tags (`support+billing@`), reply addresses
(`support+SP-42.token@`) and loop protection, so they can never disagree about what is ours.
A configured address may use `*` as its domain (`support@*`): the embedded default, for trials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class AddressMatch:
    """An address that is ours: the configured base it matched and the `+detail`, if any."""

    base: str  # the configured address, e.g. "support@smilepass.example" (or "support@*")
    local: str  # the local part without detail, lower case
    domain: str  # the domain the mail was actually sent to, lower case
    detail: str | None  # what followed the "+", as written (case kept: tokens are case-sensitive)


def split_address(address: str) -> tuple[str, str] | None:
    """Split a bare address into (local, domain); None when it has no usable shape."""
    address = address.strip().strip("<>").strip()
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        return None
    return local, domain


class GatewayAddresses:
    """The set of addresses ticketgate answers for, with `+` sub-addressing."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self._by_local: dict[str, list[tuple[str, str]]] = {}
        for configured in addresses:
            parts = split_address(configured)
            if parts is None:
                raise ValueError(f"not an address: {configured!r}")
            local, domain = parts
            self._by_local.setdefault(local.lower(), []).append((domain.lower(), configured))

    def match(self, address: str) -> AddressMatch | None:
        """The match for `address`, or None when it is not one of ours."""
        parts = split_address(address)
        if parts is None:
            return None
        local, domain = parts
        base_local, plus, detail = local.partition("+")
        candidates = self._by_local.get(base_local.lower())
        if not candidates:
            return None
        domain = domain.lower()
        for configured_domain, configured in candidates:
            if configured_domain in ("*", domain):
                return AddressMatch(
                    base=configured,
                    local=base_local.lower(),
                    domain=domain,
                    detail=detail if plus else None,
                )
        return None

    def is_ours(self, address: str) -> bool:
        return self.match(address) is not None


# --- loop protection: who may be notified at all (SPEC §7) ---------------------------------------


def bare(address: str) -> str:
    """An address without angle brackets or surrounding space."""
    return address.strip().strip("<>").strip()


# Local parts that belong to machines, compared with separators removed and in lower case, so
# "MAILER-DAEMON", "mailer_daemon", "do-not-reply" and "No.Reply" all match.
_MACHINE_WORDS = frozenset({"mailerdaemon", "postmaster", "noreply", "noreplies", "donotreply"})
_SEPARATORS = re.compile(r"[-_.]+")


def local_part(address: str) -> str:
    """The local part without any `+detail`, lower case ("" for the null sender)."""
    address = bare(address)
    local, at, _ = address.rpartition("@")
    return (local if at else address).partition("+")[0].lower()


def is_machine_local_part(address: str) -> bool:
    """True for mailer-daemon, postmaster and noreply-style local parts.

    The local part is split at separators and any run of up to three words is joined, so
    "noreply-dmarc-support", "notifications.no-reply" and "do_not_reply" match, while "norman"
    or "replies" do not.
    """
    words = [word for word in _SEPARATORS.split(local_part(address)) if word]
    for start in range(len(words)):
        for end in range(start + 1, min(start + 3, len(words)) + 1):
            if "".join(words[start:end]) in _MACHINE_WORDS:
                return True
    return False


def is_mailer_daemon(address: str) -> bool:
    return _SEPARATORS.sub("", local_part(address)) == "mailerdaemon"


def is_postmaster(address: str) -> bool:
    return local_part(address) == "postmaster"


def should_notify(address: str, *, ours: GatewayAddresses) -> bool:
    """Whether ticketgate may ever send a notification to this address (SPEC §7 loop protection).

    False for the null sender, mailer-daemon, postmaster, noreply/no-reply/donotreply/do-not-reply
    style local parts, and ticketgate's own addresses (with any `+` sub-address).
    """
    address = bare(address)
    if not address:
        return False
    if is_machine_local_part(address):
        return False
    return not ours.is_ours(address)
