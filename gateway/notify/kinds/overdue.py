"""An overdue first response (SPEC §12): an `escalation` to whoever handles the ticket and to an
Enterprise customer's account manager."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from gateway.domain import (
    Address,
    ResponseOverdue,
)
from gateway.notify.spans import span_text
from gateway.reply_address import AUDIENCE_STAFF
from gateway.store.models import Ticket

if TYPE_CHECKING:
    from gateway.notify.planner import NotificationPlanner

log = logging.getLogger(__name__)


def response_overdue(planner: NotificationPlanner, session: Session, happening: ResponseOverdue) -> None:
    """An `escalation` to the assignee (else triage) and an Enterprise customer's account manager:
    the first response is overdue. The scheduler records that it was sent (once per ticket)."""
    ticket = session.get_one(Ticket, happening.ticket_id)
    overdue = {
        "overdue_by": span_text(happening.overdue_by),
        "due_at": happening.due_at.strftime("%Y-%m-%d %H:%M UTC"),
        "text": ticket.description,
    }
    staff = planner.handlers(ticket)
    why = "the ticket is assigned to you" if ticket.assignee else "the ticket is unassigned (triage)"
    seen = {person.address.lower() for person in staff}
    for person in staff:
        planner.queue(
            session, ticket, "escalation", person, AUDIENCE_STAFF, inbox_id=None, trigger=None,
            extra={**overdue, "reason": why},
        )  # fmt: skip
    manager = planner.account_manager(ticket)
    if manager is not None and manager[0].lower() not in seen:
        planner.queue(
            session, ticket, "escalation", Address(manager[0]), AUDIENCE_STAFF, inbox_id=None,
            trigger=None, extra={**overdue, "reason": f"you are the account manager ({manager[1]})"},
        )  # fmt: skip
