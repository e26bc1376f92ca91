"""Says on a ticket that the mail's Message-ID is also another mail's (check_duplicate found it):
the one place that event is written, by add_reply and by open_ticket, always with its inbox row."""

from __future__ import annotations

from gateway.domain import EventKind
from gateway.pipeline.stage_values import MailRun, Parsed
from gateway.store import tickets as store


def record_collision(run: MailRun, mail: Parsed, *, ticket_id: int) -> None:
    if mail.collision is None:
        return
    store.add_event(
        run.session,
        ticket_id=ticket_id,
        kind=EventKind.MESSAGE_ID_COLLISION,
        new=mail.collision,
        actor="ticketgate",
        inbox_id=run.item.id,
    )
