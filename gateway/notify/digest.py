"""The daily digest to triage (SPEC §12, template `digest`): new since yesterday, unassigned Urgent
and High, waiting longest, first responses overdue.

`due_day` says whether a digest is due at a moment (the local day in `views.timezone`, once
`views.digest_at` has passed that day; a time missed while no node ran is caught up at the next
check the same day); `queue_digest` records the day in `done_once` and queues the mail in one
transaction, so a restart or a second node never sends a day's digest twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.domain import REPLY_MARKER, Address
from gateway.notify.message import AUTO_GENERATED, one_line
from gateway.notify.planner import NotificationPlanner
from gateway.notify.spans import span_text
from gateway.present import ticket_ref
from gateway.store import scheduled
from gateway.store.models import OutboxRow, Ticket

TEMPLATE = "digest"
SECTION_LIMIT = 25  # rows per section; the rest is counted ("and 4 more")


def due_day(settings: Settings, now: datetime) -> date | None:
    """The local date whose digest is due at `now`, or None (no `digest_at`, or not yet today)."""
    at = settings.views.digest_at
    if at is None:
        return None
    local = now.astimezone(ZoneInfo(settings.views.timezone))
    return local.date() if local.time().replace(tzinfo=None) >= at else None


def queue_digest(session: Session, planner: NotificationPlanner, *, now: datetime) -> list[OutboxRow]:
    """Queue today's digest to triage (else every staff address) unless some node already did; the
    rows queued (none when it is not due or was sent)."""
    settings = planner.settings
    day = due_day(settings, now)
    if day is None or scheduled.is_done(session, scheduled.DIGEST, day.isoformat()):
        return []
    if not scheduled.mark_done_once(session, scheduled.DIGEST, day.isoformat(), at=now):
        return []
    context = digest_context(session, settings, now=now, day=day)
    counts = {section["title"]: section["count"] for section in context["sections"]}
    subject = one_line(
        f"Daily digest {day.isoformat()}: {counts['New since yesterday']} new, "
        f"{counts['First responses overdue']} overdue, {context['open_count']} open"
    )
    rows = []
    for address in dict.fromkeys(person.address.lower() for person in planner.staff_list()):
        # Replies go back to the recipient itself, never into the queue.
        row = planner.queue_answer(
            session, TEMPLATE, Address(address), inbox_id=None, subject=subject, context=context,
            ref=f"digest-{day.isoformat()}", reply_to=address, auto_submitted=AUTO_GENERATED, now=now,
        )  # fmt: skip
        if row is not None:
            rows.append(row)
    return rows


def digest_context(session: Session, settings: Settings, *, now: datetime, day: date) -> dict[str, Any]:
    """What the template shows: four sections of rows, each row a ticket and a `when`."""
    prefix = settings.gateway.ticket_prefix
    targets = settings.response_targets

    def row(ticket: Ticket, when: str) -> dict[str, Any]:
        return {
            "ref": ticket_ref(prefix, ticket.id),
            "priority": ticket.priority,
            "tier": ticket.tier,
            "title": one_line(ticket.title),
            "category": ticket.category,
            "status": ticket.status,
            "assignee": ticket.assignee or "",
            "when": when,
        }

    since = now - timedelta(days=1)
    new = [row(t, span_text(now - t.created_at)) for t in scheduled.opened_since(session, since)]
    pressing = [row(t, span_text(now - t.created_at)) for t in scheduled.unassigned_pressing(session)]
    waiting = [
        row(t, f"{span_text(now - at)}") for t, at in scheduled.waiting_on_us(session, limit=SECTION_LIMIT)
    ]
    overdue = [
        row(ticket, span_text(now - due))
        for ticket, due in scheduled.overdue_first_responses(session, targets, now=now, unescalated=False)
    ]
    return {
        "marker": REPLY_MARKER,
        "desk": settings.outbound.sender.name or "Support",
        "day": day.isoformat(),
        "timezone": settings.views.timezone,
        "open_count": scheduled.count_open(session),
        "sections": [
            _section("New since yesterday", "age", new),
            _section("Unassigned Urgent and High", "age", pressing),
            _section("Waiting longest for us", "waiting", waiting),
            _section("First responses overdue", "late by", overdue),
        ],
    }


def _section(title: str, when_label: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": title,
        "when_label": when_label,
        "rows": list(rows[:SECTION_LIMIT]),
        "more": max(0, len(rows) - SECTION_LIMIT),
        "count": len(rows),
    }
