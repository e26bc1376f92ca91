"""Escalation of overdue first responses (SPEC §12), one job of the scheduler: an open ticket whose
`first_response_due` has passed with no public staff reply gets one `escalation` to its assignee (or
triage) and, for an Enterprise customer, to the account manager.

Once per ticket: the `done_once` row (gateway/store/scheduled.py) is inserted in the transaction that
queues the mail and records the `escalated` event, so neither a restart nor a second node repeats it.
A ticket answered, Resolved or Closed before the check is not escalated.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gateway.domain import EventKind, ResponseOverdue
from gateway.pipeline.processor import Notifier
from gateway.present import iso
from gateway.response_targets import ResponseTargets
from gateway.store import scheduled
from gateway.store import tickets as store

ACTOR = "ticketgate"


def escalate_overdue(
    session: Session, targets: ResponseTargets, notifier: Notifier | None, *, now: datetime
) -> list[int]:
    """Escalate every ticket whose first response is overdue and not escalated yet; their ids."""
    happenings: list[ResponseOverdue] = []
    for ticket, due in scheduled.overdue_first_responses(session, targets, now=now, unescalated=True):
        if not scheduled.mark_done_once(session, scheduled.ESCALATION, str(ticket.id), at=now):
            continue  # another node escalated it meanwhile
        late = now - due
        store.add_event(
            session,
            ticket_id=ticket.id,
            kind=EventKind.ESCALATED,
            field="first_response",
            old=iso(due),
            new=f"no public staff reply {int(late.total_seconds() // 60)} min after it was due",
            actor=ACTOR,
        )
        happenings.append(ResponseOverdue(ticket.id, due, late))
    if happenings and notifier is not None:
        notifier.plan(session, happenings, inbox_id=None)
    return [happening.ticket_id for happening in happenings]
