"""Lists of tickets as the templates show them (SPEC §12): plain values, one dict per row, so the
templates only lay them out and a failed row can be rendered again from its stored context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain import Status
from gateway.present import ticket_ref
from gateway.store.models import Ticket

# A customer with more tickets than this gets the newest open ones and a line saying how many more.
MY_TICKETS_SHOWN = 50
_DONE = frozenset({Status.RESOLVED.value, Status.CLOSED.value})


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
            "open": ticket.status not in _DONE,
        }
        for ticket in tickets
    ]
