"""Values of single header fields, read tolerantly: message ids, the date, Delivered-To (used by
gateway/mail/parse.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parseaddr, parsedate_to_datetime


def message_ids(value: str | None) -> tuple[str, ...]:
    """Message ids of an In-Reply-To/References value, brackets off; tolerant of missing brackets."""
    if not value:
        return ()
    bracketed = [re.sub(r"\s+", "", m) for m in re.findall(r"<([^<>]*)>", value)]
    candidates = bracketed or [token for token in re.split(r"[\s,;]+", value) if "@" in token]
    seen: dict[str, None] = {}
    for candidate in candidates:
        if candidate:
            seen.setdefault(candidate, None)
    return tuple(seen)


def message_id(value: str | None) -> str | None:
    ids = message_ids(value)
    if ids:
        return ids[0]
    bare = (value or "").strip().strip("<>").strip()
    return bare.split()[0] if bare else None


def date_of(from_mailparser: datetime | None, header_value: str | None) -> datetime | None:
    if from_mailparser is not None:
        return from_mailparser
    if not header_value:
        return None
    try:
        parsed = parsedate_to_datetime(header_value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def delivered_to(values: Iterable[str]) -> tuple[str, ...]:
    found = []
    for value in values:
        address = parseaddr(value)[1] or value.strip().strip("<>")
        if address:
            found.append(address)
    return tuple(found)
