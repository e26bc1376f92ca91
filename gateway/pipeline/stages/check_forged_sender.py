"""Stage: a new ticket whose From a trusted server calls forged gets no acknowledgement (SPEC §11).

It opens the ticket itself (through the open-ticket stage, with notifications to the sender
suppressed) so that it can add the event saying why nothing was sent; mail it has no verdict on
goes on to the open-ticket stage unchanged.
"""

from __future__ import annotations

import dataclasses

from gateway.pipeline.forged_sender import forged_sender
from gateway.pipeline.happenings import TicketOpened
from gateway.pipeline.stages.context import (
    MailContext,
    ProcessorDeps,
    ProcessResult,
)
from gateway.pipeline.stages.open_ticket import open_ticket_stage
from gateway.rawmail import top_header_fields
from gateway.store import tickets as store

EVENT_KIND = "forged_sender"


def forged_sender_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    sender = ctx.parsed.sender
    from_domain = sender.address.rpartition("@")[2] if sender is not None and "@" in sender.address else None
    verdict = forged_sender(
        top_header_fields(ctx.item.raw),
        from_domain=from_domain,
        trusted=deps.settings.staff.trusted_authserv_ids,
    )
    if verdict is None:
        return None
    assert ctx.classification is not None
    ctx.classification = dataclasses.replace(
        ctx.classification,
        suppress_notifications=True,
        reason=f"{ctx.classification.reason}; forged sender: {verdict}",
    )
    result = open_ticket_stage(ctx, deps)
    assert result is not None and result.ticket_id is not None
    # Staff's new-ticket notice says why the sender was not answered.
    ctx.happenings[:] = [
        dataclasses.replace(h, not_acknowledged_because=verdict) if isinstance(h, TicketOpened) else h
        for h in ctx.happenings
    ]
    store.add_event(
        ctx.session,
        ticket_id=result.ticket_id,
        kind=EVENT_KIND,
        new=verdict,
        actor="ticketgate",
        inbox_id=ctx.item.id,
    )
    return dataclasses.replace(result, detail=f"{result.detail}; not acknowledged: forged sender")
