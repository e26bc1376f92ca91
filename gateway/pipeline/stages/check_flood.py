"""Stage: a sender past `limits.new_tickets_per_sender_per_hour` opens no more tickets (SPEC §11).

It runs after the reply stages, so only mail that would open a new ticket is counted and held;
replies to existing tickets are never limited. The hour is the one before the mail was received,
so the verdict does not depend on when (or how often) the mail is processed.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.pipeline.new_ticket import requester_of
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.store.limits import tickets_opened_by

WINDOW = timedelta(hours=1)


def flood_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Outcome `flood`: stored, no ticket, no acknowledgement; `inbox release` makes it its ticket."""
    limit = deps.settings.limits.new_tickets_per_sender_per_hour
    # Authenticated staff open tickets for customers by the dozen; they are not a flood.
    if limit == 0 or ctx.item.released or ctx.staff.is_staff:
        return None
    sender = ctx.sender or requester_of(ctx.parsed, ctx.item.envelope)
    received = ctx.item.received_at
    opened = tickets_opened_by(ctx.session, sender.address, since=received - WINDOW, until=received)
    if opened < limit:
        return None
    detail = f"{sender.address} opened {opened} tickets in the hour before this mail (limit {limit})"
    return ProcessResult(ctx.item.id, Outcome.FLOOD, None, detail)
