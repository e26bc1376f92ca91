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
- Text inside a quoted display name, or inside an RFC 2047 encoded word, is never taken for the
  address (`From: "a@b" <>` has none), since anybody can write anything there: the mailboxes come
  from parse_mail, which reads them before decoding (ParsedMail.mailboxes).
- Each `From` header is tried in order, so an unparseable first one does not hide a good second
  one; within one header, the first usable mailbox of its list counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.domain import Address, Envelope, ParsedMail
from gateway.mail.headers import envelope_sender

UNKNOWN_SENDER = "unknown@invalid"

_ATOM = r"[^\s@<>()\[\],;:\"]"
# A domain is a host name (dotted or not: `root@localhost` is an address) or an address literal.
_DOMAIN = r"(?:[^\W_](?:[\w-]*[^\W_])?)(?:\.[^\W_](?:[\w-]*[^\W_])?)*\.?|\[[^\s\[\]]+\]"
_USABLE = re.compile(rf"{_ATOM}+@(?:{_DOMAIN})")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Requester:
    """The sender as found, which header gave it, and why it is unknown when it is."""

    address: Address
    source: str  # "From", "Sender", "Reply-To", "envelope", or "" when unknown
    reason: str = ""  # set only for unknown@invalid: what each place held


def usable(address: str) -> bool:
    return bool(_USABLE.fullmatch(address.strip()))


def _first_usable(headers: tuple[tuple[Address, ...], ...]) -> Address | None:
    """The first usable mailbox of the first header that has one."""
    for mailboxes in headers:
        for mailbox in mailboxes:
            if usable(mailbox.address):
                return Address(mailbox.address.strip(), mailbox.name)
    return None


def _display_name_only(value: str) -> str:
    """The name in a From that has no address at all ("Maria Lopez", '"Maria Lopez" <>'), or ""."""
    if "@" in _QUOTED.sub(" ", value):
        return ""
    name = _COMMENT.sub(" ", value.replace("<>", " "))
    name = " ".join(_CONTROL.sub("", name).split()).strip("\"' ")
    # An address-like name ('"a@b" <>') is no name either: it would pass for the address.
    return name if name and not any(char in name for char in "<>@") else ""


def find_requester(mail: ParsedMail, envelope: Envelope) -> Requester:
    """The sender of `mail` by SPEC §1's order; `unknown@invalid` (with the reason) when nobody is named."""
    froms = mail.headers.get("from", ())
    if found := _first_usable(mail.mailboxes.get("from", ())):
        return Requester(found, "From")
    name = next((n for n in map(_display_name_only, froms) if n), "")
    for header, source in (("sender", "Sender"), ("reply-to", "Reply-To")):
        if found := _first_usable(mail.mailboxes.get(header, ())):
            return Requester(Address(found.address, name or found.name), source)
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
