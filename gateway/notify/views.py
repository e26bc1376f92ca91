"""Lists of tickets as the templates show them (SPEC §12): plain values, one dict per row, so the
templates only lay them out and a failed row can be rendered again from its stored context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain import DONE_STATUSES
from gateway.present import ticket_ref
from gateway.store.models import Ticket

# A customer with more tickets than this gets the newest open ones and a line saying how many more.
MY_TICKETS_SHOWN = 50


def my_tickets_rows(tickets: Sequence[Ticket], *, prefix: str, timezone: str) -> list[dict[str, Any]]:
    """The seed's columns, Ref · Priority · Date · Title · Category · Status, in the order given; the
    date is the day the ticket was opened, in `views.timezone`."""
    zone = ZoneInfo(timezone)
    return [
        {
            "ref": ticket_ref(prefix, ticket.id),
            "priority": ticket.priority,
            "date": ticket.created_at.astimezone(zone).date().isoformat(),
            "title": ticket.title,
            "category": ticket.category,
            "status": ticket.status,
            "open": ticket.status not in DONE_STATUSES,
        }
        for ticket in tickets
    ]


def waited(since: datetime, now: datetime) -> str:
    """A waiting time for people: `45m`, `3h 20m`, `2d 4h`."""
    minutes = max(int((now - since).total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def queue_rows(
    tickets: Sequence[Ticket], *, prefix: str, last_customer: Mapping[int, datetime], now: datetime
) -> list[dict[str, Any]]:
    """The staff queue as `#queue` shows it, in the order given (queue order): ref, priority, title,
    assignee, status, and how long it has waited since the customer last wrote (or since it opened)."""
    return [
        {
            "ref": ticket_ref(prefix, ticket.id),
            "priority": ticket.priority,
            "title": ticket.title,
            "assignee": ticket.assignee or "",
            "status": ticket.status,
            "tier": ticket.tier,
            "waiting": waited(last_customer.get(ticket.id, ticket.created_at), now),
        }
        for ticket in tickets
    ]
