"""Who sent a mail: the requester of the ticket it opens, the author of the message it adds (SPEC §1).

The order is SPEC's: the first `From` with a usable address; where From is missing, empty (`<>`),
a display name only or unparseable, then `Sender`, then `Reply-To`, then the envelope sender
(unless null); only when none of them names an address, `unknown@invalid`, with the reason for
the ticket's events. A sender who wrote `From: Maria Lopez` keeps that name beside the address
found further down. Pure: the parsed mail and the envelope are all it reads.

Rules chosen where the spec is silent:
- A usable address is `local@domain`, the domain a host name (`root@localhost` counts) or an
  address literal, with no spaces and one `@`: `maria at example.com`, `@example.com`, `maria@`
  and bare words are not addresses.
- Text inside a quoted display name is never taken for the address (`From: "a@b" <>` has none),
  since anybody can write anything there.
- Each `From` header is tried in order, so an unparseable first one does not hide a good second
  one; within one header, the first usable mailbox of its list counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import getaddresses

from gateway.domain import Address, Envelope, ParsedMail
from gateway.pipeline.rules import envelope_sender

UNKNOWN_SENDER = "unknown@invalid"

_ATOM = r"[^\s@<>()\[\],;:\"]"
# A domain is a host name (dotted or not: `root@localhost` is an address) or an address literal.
_DOMAIN = r"(?:[^\W_](?:[\w-]*[^\W_])?)(?:\.[^\W_](?:[\w-]*[^\W_])?)*\.?|\[[^\s\[\]]+\]"
_USABLE = re.compile(rf"{_ATOM}+@(?:{_DOMAIN})")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_BARE_ADDRESS = re.compile(rf"{_ATOM}+@{_ATOM}+")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Requester:
    """The sender as found, which header gave it, and why it is unknown when it is."""

    address: Address
    source: str  # "From", "Sender", "Reply-To", "envelope", or "" when unknown
    reason: str = ""  # set only for unknown@invalid: what each place held


def usable(address: str) -> bool:
    return bool(_USABLE.fullmatch(address.strip()))


def _mailboxes(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs of one header value; an address counts only outside quoted names."""
    try:
        pairs = getaddresses([value])
    except (TypeError, ValueError, IndexError):  # the stdlib's parser on hostile input
        pairs = []
    unquoted = _QUOTED.sub(" ", value)
    found = [
        (" ".join(name.split()).strip("\"' "), address.strip())
        for name, address in pairs
        if usable(address) and address.strip().lower() in unquoted.lower()
    ]
    if found:
        return found
    # "Big Bug bb@bug.com": no angle brackets, which the stdlib reads as a name; the bare address then.
    bare = _COMMENT.sub(" ", unquoted)
    token = _BARE_ADDRESS.search(bare)
    if token is None or not usable(token.group()):
        return []
    return [(" ".join(_CONTROL.sub("", bare[: token.start()]).split()).strip("\"'<> "), token.group())]


def _display_name_only(value: str) -> str:
    """The name in a From that has no address at all ("Maria Lopez", '"Maria Lopez" <>'), or ""."""
    if "@" in _QUOTED.sub(" ", value):
        return ""
    name = _COMMENT.sub(" ", value.replace("<>", " "))
    name = " ".join(_CONTROL.sub("", name).split()).strip("\"' ")
    # An address-like name ('"a@b" <>') is no name either: it would pass for the address.
    return name if name and not any(char in name for char in "<>@") else ""


def _from_header(mail: ParsedMail, values: Iterable[str]) -> Address | None:
    """The first usable From mailbox, with the name parse_mail decoded where it read the same one."""
    for index, value in enumerate(values):
        found = _mailboxes(value)
        if not found:
            continue
        name, address = found[0]
        # parse_mail reads the first From with more care for broken display names; same address, its name.
        if index == 0 and mail.sender is not None and mail.sender.address.lower() == address.lower():
            name = mail.sender.name or name
        return Address(address, name)
    return None


def find_requester(mail: ParsedMail, envelope: Envelope) -> Requester:
    """The sender of `mail` by SPEC §1's order; `unknown@invalid` (with the reason) when nobody is named."""
    froms = mail.headers.get("from", ())
    if found := _from_header(mail, froms):
        return Requester(found, "From")
    name = next((n for n in map(_display_name_only, froms) if n), "")
    for header, source in (("sender", "Sender"), ("reply-to", "Reply-To")):
        for value in mail.headers.get(header, ()):
            if mailboxes := _mailboxes(value):
                found_name, address = mailboxes[0]
                return Requester(Address(address, name or found_name), source)
    reverse_path = envelope_sender(mail, envelope)
    if reverse_path and usable(reverse_path):
        return Requester(Address(reverse_path, name), "envelope")
    return Requester(Address(UNKNOWN_SENDER, name), "", _why_unknown(froms, reverse_path))


def _why_unknown(froms: tuple[str, ...], reverse_path: str | None) -> str:
    said = "no From" if not froms else "From " + ", ".join(repr(v[:80]) for v in froms)
    envelope = {None: "no envelope sender", "": "a null envelope sender"}.get(
        reverse_path, f"envelope sender {reverse_path[:80]!r}" if reverse_path else ""
    )
    return f"no usable address: {said}, no usable Sender or Reply-To, {envelope}"
