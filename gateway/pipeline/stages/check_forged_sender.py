"""Stage check_forged_sender: a new ticket whose From a trusted server calls forged gets no
acknowledgement (SPEC §11).

It opens the ticket itself (through open_ticket, with notifications to the sender suppressed) so
that it can add the event saying why nothing was sent; mail it has no verdict on goes on to
open_ticket unchanged.
"""

from __future__ import annotations

import dataclasses

from gateway.domain import EventKind, TicketOpened
from gateway.pipeline.forged_sender import forged_sender
from gateway.pipeline.stage_values import Decision, MailRun, Threaded
from gateway.pipeline.stages.open_ticket import open_new_ticket
from gateway.store import tickets as store


def check_forged_sender(mail: Threaded, run: MailRun) -> Threaded | Decision:
    sender = mail.mail.sender
    from_domain = sender.address.rpartition("@")[2] if sender is not None and "@" in sender.address else None
    verdict = forged_sender(
        run.header_fields,
        from_domain=from_domain,
        trusted=run.deps.settings.staff.trusted_authserv_ids,
    )
    if verdict is None:
        return mail
    classification = dataclasses.replace(
        mail.classification,
        suppress_notifications=True,
        reason=f"{mail.classification.reason}; forged sender: {verdict}",
    )
    ticket_id, opened = open_new_ticket(dataclasses.replace(mail, classification=classification), run)
    # Staff's new-ticket notice says why the sender was not answered.
    happenings = tuple(
        dataclasses.replace(h, not_acknowledged_because=verdict) if isinstance(h, TicketOpened) else h
        for h in opened.happenings
    )
    store.add_event(
        run.session,
        ticket_id=ticket_id,
        kind=EventKind.FORGED_SENDER,
        new=verdict,
        actor="ticketgate",
        inbox_id=run.item.id,
    )
    detail = f"{opened.detail}; not acknowledged: forged sender"
    return dataclasses.replace(opened, detail=detail, happenings=happenings)
