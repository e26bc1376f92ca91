"""A bounce (SPEC §7): the notification it names is marked bounced and, on a permanent failure, its
address undeliverable; staff see it on the ticket."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from gateway.domain import (
    BounceReceived,
    EventKind,
)
from gateway.reply_address import parse_verp_detail
from gateway.store import outbox
from gateway.store import tickets as ticket_store
from gateway.store.models import OutboxRow

if TYPE_CHECKING:
    from gateway.notify.planner import NotificationPlanner

log = logging.getLogger(__name__)

# A bounce that names only its failed recipient is matched to the latest notification sent to that
# address within this many days: MTAs give up on a mail after 4 to 7 days and then bounce it.
RECIPIENT_MATCH_DAYS = 14
# A returned message carries one Message-ID; a wrapped one or quoted text a few more.
_MESSAGE_IDS_TRIED = 10


def bounce(planner: NotificationPlanner, session: Session, happening: BounceReceived) -> None:
    """Mark the notification bounced and, on a permanent failure, its address undeliverable.

    Which notification: the one its VERP address names (the token makes a forged bounce unable
    to mark mail, so a bounce to a VERP address with a bad token marks nothing); for a bounce
    sent to a plain address of ours, the one whose Message-ID the returned message carries (only
    its recipients and we know it); failing that, the latest one sent to each failed recipient
    within `RECIPIENT_MATCH_DAYS`, which anyone could claim, but which only stops mail to that
    address until it writes to us again, and which staff see on the ticket.
    """
    matches = bounced_notifications(planner, session, happening)
    if not matches:
        log.info("inbox %d: bounce names none of our notifications", happening.inbox_id)
        return
    words = " ".join(part for part in (happening.status, happening.diagnostic) if part) or "no reason given"
    for row, matched_by in matches:
        mark_bounced(planner, session, row, happening, words, matched_by)


def bounced_notifications(
    planner: NotificationPlanner, session: Session, happening: BounceReceived
) -> list[tuple[OutboxRow, str]]:
    """(outbox row, how it was matched) for each notification the bounce is about."""
    detail = happening.verp_detail or ""
    if detail.lower().startswith("bounce-"):
        outbox_id = parse_verp_detail(detail, secret=planner.secret)
        row = outbox.get(session, outbox_id) if outbox_id is not None else None
        return [(row, "")] if row is not None else []
    for message_id in happening.message_ids[:_MESSAGE_IDS_TRIED]:
        row = outbox.by_message_id(session, message_id)
        if row is not None:
            return [(row, "its Message-ID")]
    since = planner.clock() - timedelta(days=RECIPIENT_MATCH_DAYS)
    found: dict[int, tuple[OutboxRow, str]] = {}
    for address in happening.recipients:
        row = outbox.latest_sent_to(session, address, since=since)
        if row is not None:
            found.setdefault(row.id, (row, "its failed recipient"))
    return list(found.values())


def mark_bounced(
    planner: NotificationPlanner,
    session: Session,
    row: OutboxRow,
    happening: BounceReceived,
    words: str,
    matched_by: str,
) -> None:
    if happening.permanent:
        row.status = outbox.BOUNCED
        row.last_error = f"bounced: {words}"
        outbox.mark_undeliverable(
            session, row.to_address, reason=f"bounced: {words}", inbox_id=happening.inbox_id
        )
    else:
        row.last_error = f"delivery delayed: {words}"
    how = f" (matched by {matched_by})" if matched_by else ""
    log.info(
        "inbox %d: bounce for outbox %d to %s%s: %s",
        happening.inbox_id, row.id, row.to_address, how, words,
    )  # fmt: skip
    if row.ticket_id is not None:
        kind = EventKind.BOUNCE if happening.permanent else EventKind.BOUNCE_DELAYED
        ticket_store.add_event(
            session,
            ticket_id=row.ticket_id,
            kind=kind,
            field="notification",
            old=row.template,
            new=f"{row.to_address}: {words}{how}"[:1000],
            actor="ticketgate",
            inbox_id=happening.inbox_id,
        )
