"""The one place that mints and verifies ticketgate's own sub-addresses (SPEC §4.1, §7 VERP).

A reply address (`support+SP-42.<token>@domain`) carries an HMAC of the ticket and the audience
(requester or staff) keyed by `gateway.secret`: it cannot be guessed, moved to another ticket, or
turned from a requester's into a staff one. A VERP address (`support+bounce-17.<token>@domain`)
names the outbox row a bounce is about, with its own HMAC so a forged bounce cannot mark mail.

Tokens are lower-case base32 (80 bits): some MTAs fold the local part to lower case, so tokens are
compared case-insensitively and lose nothing by it.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

AUDIENCE_REQUESTER = "requester"
AUDIENCE_STAFF = "staff"
AUDIENCES = (AUDIENCE_REQUESTER, AUDIENCE_STAFF)

TOKEN_LENGTH = 16  # base32 characters: 80 bits
_REPLY_DETAIL = re.compile(r"([A-Za-z][A-Za-z0-9]*)-(\d{1,18})\.([A-Za-z2-7]{16})")
_VERP_DETAIL = re.compile(r"bounce-(\d{1,18})\.([A-Za-z2-7]{16})", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyToken:
    ticket_id: int
    audience: str  # AUDIENCE_REQUESTER or AUDIENCE_STAFF


def _token(secret: str, message: str) -> str:
    """The first TOKEN_LENGTH base32 characters of the HMAC-SHA256 of `message`.

    Base32 writes each 5 bytes as 8 characters, so those are the base32 of the digest's first 10
    bytes alone; `hmac.digest` is the one-shot form of `hmac.new(...).digest()`. Both spare work
    done for every notification (tests/unit/test_reply_address_token.py holds them to the long way).
    """
    digest = hmac.digest(secret.encode("utf-8"), message.encode("utf-8"), "sha256")
    return base64.b32encode(digest[: TOKEN_LENGTH * 5 // 8]).decode("ascii").lower()


def _with_detail(base_address: str, detail: str) -> str:
    local, at, domain = base_address.strip().strip("<>").rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an address: {base_address!r}")
    return f"{local.partition('+')[0]}+{detail}@{domain}"


def reply_token(*, ticket_id: int, audience: str, secret: str) -> str:
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r}")
    return _token(secret, f"reply:{ticket_id}:{audience}")


def reply_address(base_address: str, *, prefix: str, ticket_id: int, audience: str, secret: str) -> str:
    """`support+SP-42.<token>@domain` for `base_address` `support@domain`."""
    token = reply_token(ticket_id=ticket_id, audience=audience, secret=secret)
    return _with_detail(base_address, f"{prefix}-{ticket_id}.{token}")


def parse_reply_detail(detail: str, *, prefix: str, secret: str) -> ReplyToken | None:
    """The ticket and audience a `+detail` was minted for; None when forged, moved or malformed."""
    match = _REPLY_DETAIL.fullmatch(detail.strip())
    if match is None or match.group(1).lower() != prefix.lower():
        return None
    ticket_id = int(match.group(2))
    given = match.group(3).lower()
    found: ReplyToken | None = None
    # Both audiences are always checked, so the time taken says nothing about which one matched.
    for audience in AUDIENCES:
        expected = reply_token(ticket_id=ticket_id, audience=audience, secret=secret)
        if hmac.compare_digest(expected, given):
            found = ReplyToken(ticket_id=ticket_id, audience=audience)
    return found


def verp_address(base_address: str, *, outbox_id: int, secret: str) -> str:
    """`support+bounce-<id>.<token>@domain`: the envelope sender of outbox row `outbox_id`."""
    return _with_detail(base_address, f"bounce-{outbox_id}.{_token(secret, f'verp:{outbox_id}')}")


def parse_verp_detail(detail: str, *, secret: str) -> int | None:
    """The outbox id a VERP `+detail` names; None when forged or malformed."""
    match = _VERP_DETAIL.fullmatch(detail.strip())
    if match is None:
        return None
    outbox_id = int(match.group(1))
    if not hmac.compare_digest(_token(secret, f"verp:{outbox_id}"), match.group(2).lower()):
        return None
    return outbox_id
