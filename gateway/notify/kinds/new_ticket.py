"""A new ticket's notifications (SPEC §7, §12): the acknowledgement to the requester, `staff_new_ticket`
to triage (and, marked urgent, to whoever is on call), and the escalations an Enterprise customer's or
a Security ticket calls for."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from gateway.domain import (
    BILLING,
    SECURITY,
    Address,
    Priority,
    TicketOpened,
)
from gateway.notify.hints import what_helps
from gateway.notify.planner_values import Known, fileless
from gateway.present import ticket_ref
from gateway.reply_address import AUDIENCE_REQUESTER, AUDIENCE_STAFF
from gateway.store import outbox
from gateway.store.limits import hold_senders
from gateway.store.models import Ticket
from gateway.store.participants import other_open_ticket_ids

if TYPE_CHECKING:
    from gateway.notify.planner import NotificationPlanner

log = logging.getLogger(__name__)

SECURITY_CATEGORY = SECURITY.casefold()
# A new Urgent ticket in these categories also goes to `staff.on_call` at once (SPEC §12).
ON_CALL_CATEGORIES = frozenset({BILLING.casefold(), SECURITY_CATEGORY})
ACK_TEMPLATE, ACK_WINDOW = "ticket_created", timedelta(hours=1)  # at most ack_limit_per_hour a sender
ALSO_OPEN_SHOWN = 10  # "also open: SP-41, …": the oldest ten; `tickets list --requester` has them all


def ticket_opened(
    planner: NotificationPlanner, session: Session, happening: TicketOpened, inbox_id: int | None
) -> None:
    ticket = session.get_one(Ticket, happening.ticket_id)
    outbox.clear_undeliverable(session, happening.requester.address)
    # Known without asking: the ticket's first message is the one this mail stored, and the
    # requester has no undeliverable mark (just cleared), whoever of them is queued below.
    stored_id = happening.message_id
    known = Known(
        opening=(happening.message_db_id, stored_id) if stored_id else None,
        deliverable=frozenset({outbox.undeliverable_key(happening.requester.address)}),
        without_files=fileless(happening.message_db_id, happening.has_files),
    )
    ack_note = happening.not_acknowledged_because or "the mail was automated or a loop risk"
    if happening.acknowledge:
        ack_note = acknowledge(planner, session, ticket, happening, inbox_id, known)
    text = happening.text
    extra = {
        "tags": list(happening.tags),
        "text": text,
        "acknowledged": ack_note == "",
        "ack_note": ack_note,
        "copied": _named(happening.copied),
        # SPEC §13: staff see at once that the requester has other tickets open (a merge candidate).
        "also_open": [
            ticket_ref(planner.prefix, other)
            for other in other_open_ticket_ids(session, ticket.requester_address, excluding=ticket.id)
        ][:ALSO_OPEN_SHOWN],
    }
    called_now = on_call(planner, ticket)
    called = {person.address.lower() for person in called_now}
    planner.queue_all(
        session,
        ticket,
        "staff_new_ticket",
        [person for person in planner.staff_list() if person.address.lower() not in called],
        AUDIENCE_STAFF,
        inbox_id=inbox_id,
        trigger=happening.message_db_id,
        extra=extra,
        known=known,
    )
    # The same mail, marked urgent, to whoever is on call (who may also be triage).
    planner.queue_all(
        session, ticket, "staff_new_ticket", called_now, AUDIENCE_STAFF, inbox_id=inbox_id,
        trigger=happening.message_db_id, extra={**extra, "on_call": True}, known=known,
    )  # fmt: skip
    for address, reason in escalations(planner, ticket):
        planner.queue(
            session,
            ticket,
            "escalation",
            Address(address),
            AUDIENCE_STAFF,
            inbox_id=inbox_id,
            trigger=happening.message_db_id,
            extra={"reason": reason, "text": text},
            known=known,
        )


def acknowledge(
    planner: NotificationPlanner,
    session: Session,
    ticket: Ticket,
    happening: TicketOpened,
    inbox_id: int | None,
    known: Known,
) -> str:
    """Queue `ticket_created`; "" when queued, else why not (for staff)."""
    requester = happening.requester
    limit = planner.settings.outbound.ack_limit_per_hour
    since = planner.clock() - ACK_WINDOW
    hold_senders(session, [requester.address])  # counted and queued as one step (store/limits.py)
    sent = outbox.acks_since(session, requester.address, template=ACK_TEMPLATE, since=since)
    if sent >= limit:
        why = f"{requester.address} already had {sent} acknowledgements this hour (limit {limit})"
        planner.skipped(session, ticket.id, "ticket_created", why, inbox_id)
        return why
    hints = what_helps(happening.text, has_screenshot=happening.has_screenshot)
    queued = planner.queue(
        session,
        ticket,
        "ticket_created",
        requester,
        AUDIENCE_REQUESTER,
        inbox_id=inbox_id,
        trigger=happening.message_db_id,
        extra={
            "helps": list(hints.helps),
            "device": hints.device,
            "has_screenshot": hints.has_screenshot,
            "copied": _named(happening.copied),
        },
        known=known,
    )
    return "" if queued else f"{requester.address} is not notified"


def on_call(planner: NotificationPlanner, ticket: Ticket) -> list[Address]:
    """Who is told at once of a new Urgent money or security ticket: `staff.on_call`, else triage
    (else every staff address); nobody for other tickets."""
    if ticket.priority != Priority.URGENT.value or ticket.category.casefold() not in ON_CALL_CATEGORIES:
        return []
    on_call = planner.settings.staff.on_call
    return [Address(on_call)] if on_call else planner.staff_list()


def escalations(planner: NotificationPlanner, ticket: Ticket) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    manager = planner.account_manager(ticket)
    if manager is not None:
        found[manager[0].lower()] = manager[1]
    contact = planner.settings.staff.security_contact
    if contact and ticket.category.casefold() == SECURITY_CATEGORY:
        reason = "Security category"
        key = contact.lower()
        found[key] = f"{found[key]}; {reason}" if key in found else reason
    return list(found.items())


def _named(people: Sequence[Address]) -> list[str]:
    """`Name <address>`, or the address alone, for the templates."""
    return [f"{person.name} <{person.address}>" if person.name else person.address for person in people]
