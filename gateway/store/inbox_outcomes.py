"""Every accepted mail and what became of it (SPEC §10 `inbox list|show`), and `inbox release`.

The outcome shown is the inbox row's own: `pending` while it waits or is being processed,
`quarantine` once quarantined, otherwise the outcome the processor stored (the stored names are
SPEC's). Subject and Message-ID are read from the first bytes of the stored original, so mail that
has not been processed yet (or never will be) is shown with them too.
"""

from __future__ import annotations

import email.errors
import email.header
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, Row, delete, func, select, update
from sqlalchemy.orm import Session

from gateway.mail.rawmail import top_header_fields
from gateway.store.inbox import DONE, PENDING, PROCESSING, QUARANTINED
from gateway.store.models import InboxItem, SeenMail, utcnow

OUTCOMES: tuple[str, ...] = (
    "ticket",
    "reply",
    "duplicate",
    "bounce",
    "auto_reply",
    "abuse_report",
    "spam",
    "flood",
    "my_tickets",
    "dropped",  # a `[[rules]]` entry said drop = true (SPEC §14)
    "queue",  # not in SPEC's list: `#queue` from staff to a plain address (docs/staff/commands-by-mail.md)
    "quarantine",
    "pending",
)
RELEASABLE: tuple[str, ...] = ("spam", "flood", "dropped")

# Enough for the header section of nearly every mail, without reading 25 MB originals for a listing.
HEAD_BYTES = 65536


@dataclass(frozen=True)
class InboxEntry:
    id: int
    received_at: datetime
    source: str
    envelope_from: str
    envelope_to: tuple[str, ...]
    message_id: str | None
    subject: str
    outcome: str
    ticket_id: int | None
    reason: str | None
    size: int
    attempts: int
    processed_at: datetime | None
    released_at: datetime | None


def outcome_of(state: str, outcome: str | None) -> str:
    """The outcome as `inbox list` names it, from the row's state and stored outcome."""
    if state in (PENDING, PROCESSING) or (state == DONE and not outcome):
        return "pending"
    if state == QUARANTINED:
        return "quarantine"
    return outcome or "pending"


def list_entries(
    session: Session, *, outcome: str | None = None, since: datetime | None = None
) -> list[InboxEntry]:
    """Accepted mail, oldest first; `outcome` one of OUTCOMES, `since` on the time it was received."""
    query = _ENTRY_QUERY.order_by(InboxItem.id)
    if outcome == "pending":
        query = query.where(InboxItem.state.in_([PENDING, PROCESSING]))
    elif outcome == "quarantine":
        query = query.where(InboxItem.state == QUARANTINED)
    elif outcome is not None:
        query = query.where(InboxItem.state == DONE, InboxItem.outcome == outcome)
    if since is not None:
        query = query.where(InboxItem.received_at >= since)
    return [_entry(row) for row in session.execute(query)]


def get_entry(session: Session, inbox_id: int) -> tuple[InboxEntry, bytes] | None:
    """One accepted mail and its original bytes."""
    row = session.execute(_ENTRY_QUERY.where(InboxItem.id == inbox_id)).first()
    if row is None:
        return None
    raw = session.scalar(select(InboxItem.raw).where(InboxItem.id == inbox_id))
    return _entry(row), bytes(raw or b"")


@dataclass(frozen=True)
class Release:
    """What `release` did: `released` True, or the outcome that cannot be released (None: no such mail)."""

    released: bool
    outcome: str | None


def release(session: Session, inbox_id: int) -> Release:
    """Put a `spam`, `flood` or `dropped` mail back in the queue, marked so that the verdict, the
    limit and a rule's drop are bypassed for it; any other outcome is refused. Its de-duplication
    key is dropped with it, or the mail would be taken for a copy of itself."""
    now = utcnow()
    found = session.execute(
        select(InboxItem.state, InboxItem.outcome).where(InboxItem.id == inbox_id).with_for_update()
    ).first()
    if found is None:
        return Release(False, None)
    was = outcome_of(found.state, found.outcome)
    if was not in RELEASABLE:
        return Release(False, was)
    changed = session.execute(
        update(InboxItem)
        .where(InboxItem.id == inbox_id, InboxItem.state == DONE, InboxItem.outcome.in_(RELEASABLE))
        .values(
            state=PENDING,
            outcome=None,
            ticket_id=None,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            claimed_by=None,
            processed_at=None,
            released_at=now,
            error=f"released from {was}",
            error_detail=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:  # released by someone else meanwhile (SQLite has no row lock to wait on)
        return Release(False, was)
    session.execute(delete(SeenMail).where(SeenMail.inbox_id == inbox_id))
    return Release(True, was)


_ENTRY_QUERY = select(
    InboxItem.id,
    InboxItem.received_at,
    InboxItem.source,
    InboxItem.mail_from,
    InboxItem.rcpt_tos,
    InboxItem.message_id,
    InboxItem.state,
    InboxItem.outcome,
    InboxItem.ticket_id,
    InboxItem.error,
    InboxItem.size,
    InboxItem.attempts,
    InboxItem.processed_at,
    InboxItem.released_at,
    func.substr(InboxItem.raw, 1, HEAD_BYTES, type_=LargeBinary).label("head"),
)


def _entry(row: Row[Any]) -> InboxEntry:
    fields = top_header_fields(bytes(row.head or b""))
    message_id = row.message_id or _first(fields, "message-id").strip().strip("<>") or None
    return InboxEntry(
        id=row.id,
        received_at=row.received_at,
        source=row.source,
        envelope_from=row.mail_from,
        envelope_to=tuple(row.rcpt_tos),
        message_id=message_id,
        subject=_decoded(_first(fields, "subject")),
        outcome=outcome_of(row.state, row.outcome),
        ticket_id=row.ticket_id,
        reason=row.error,
        size=row.size,
        attempts=row.attempts,
        processed_at=row.processed_at,
        released_at=row.released_at,
    )


def _first(fields: Sequence[tuple[str, str]], name: str) -> str:
    return next((value for field, value in fields if field == name), "")


def _decoded(value: str) -> str:
    """RFC 2047 words decoded, whitespace folded; the value as written when its words are broken."""
    try:
        text = str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        text = value
    return " ".join(text.split())
