"""Answers to staff and customers who asked for something by mail (SPEC §5, §12): the command
receipt (`command_result`, with the queue for `#queue`) and a customer's own tickets (`my_tickets`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from gateway.domain import (
    OPEN_STATUSES,
    REPLY_MARKER,
    CommandResult,
    QueueRequested,
    TicketsRequested,
)
from gateway.notify.views import MY_TICKETS_SHOWN, my_tickets_rows, queue_rows
from gateway.reply_address import AUDIENCE_STAFF
from gateway.store import my_tickets as my_tickets_store
from gateway.store import outbox, staff_queries
from gateway.store.models import Ticket

if TYPE_CHECKING:
    from gateway.notify.planner import NotificationPlanner

log = logging.getLogger(__name__)


def command_result(
    planner: NotificationPlanner, session: Session, happening: CommandResult, inbox_id: int | None
) -> None:
    ticket = session.get_one(Ticket, happening.ticket_id)
    planner.queue(
        session,
        ticket,
        "command_result",
        happening.staff,
        AUDIENCE_STAFF,
        inbox_id=inbox_id,
        trigger=None,
        extra={
            "applied": list(happening.applied),
            "refused": [{"line": line, "reason": reason} for line, reason in happening.refused],
            **staff_queue(planner, session, happening.staff.address, happening.queue),
        },
    )


def queue_requested(
    planner: NotificationPlanner, session: Session, happening: QueueRequested, inbox_id: int | None
) -> None:
    """`#queue` alone to a plain gateway address: a receipt about no ticket, with the queue."""
    context = {
        "marker": REPLY_MARKER,
        "desk": planner.sender.name or "Support",
        "ref": None,
        "applied": list(happening.lines),
        "refused": [],
        **staff_queue(planner, session, happening.staff.address, happening.scope),
    }
    subject = "Your queue" if happening.scope == "mine" else "The queue"
    planner.queue_answer(
        session, "command_result", happening.staff, inbox_id=inbox_id, subject=subject,
        answers=happening.message_id, context=context,
    )  # fmt: skip


def staff_queue(
    planner: NotificationPlanner, session: Session, staff: str, scope: str | None
) -> dict[str, Any]:
    """The template variables of `#queue` (scope "all") and `#queue mine`: the open tickets in
    queue order, read with the staff CLI's own query (`tickets list`); none without a scope."""
    if scope is None:
        return {"queue": None, "queue_scope": None}
    wanted = staff_queries.QueueFilter(
        statuses=OPEN_STATUSES, assignees=(staff.strip().lower(),) if scope == "mine" else ()
    )
    tickets = staff_queries.filtered_queue(session, wanted)
    last = staff_queries.last_customer_message_at(session, [ticket.id for ticket in tickets])
    rows = queue_rows(tickets, prefix=planner.prefix, last_customer=last, now=planner.clock())
    return {"queue": rows, "queue_scope": scope}


def my_tickets(
    planner: NotificationPlanner, session: Session, happening: TicketsRequested, inbox_id: int | None
) -> None:
    """The list of the asker's own tickets, to the mail's From (the stage has checked the rest)."""
    to = happening.requester
    outbox.clear_undeliverable(session, to.address)  # they wrote to us again (SPEC §7)
    tickets, total = my_tickets_store.requester_tickets(session, to.address, limit=MY_TICKETS_SHOWN)
    rows = my_tickets_rows(tickets, prefix=planner.prefix, timezone=planner.settings.views.timezone)
    desk = planner.sender.name or "Support"
    context = {
        "marker": REPLY_MARKER,
        "desk": desk,
        "requester_name": to.name,
        "requester_address": to.address,
        "tickets": rows,
        "open_count": sum(1 for row in rows if row["open"]),
        "total": total,
    }
    subject = f"Your tickets with {desk}" if total else f"No tickets with {desk}"
    planner.queue_answer(
        session, "my_tickets", to, inbox_id=inbox_id, subject=subject, answers=happening.message_id,
        context=context,
    )  # fmt: skip
