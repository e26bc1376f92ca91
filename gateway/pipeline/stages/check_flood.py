"""Stage check_flood: a sender past `limits.new_tickets_per_sender_per_hour` opens no more tickets
(SPEC §11).

It runs after the reply stages, so only mail that would open a new ticket is counted and held;
replies to existing tickets are never limited. The hour is the one before the mail was received,
so the verdict does not depend on when (or how often) the mail is processed; unless a later mail of
the same sender was processed first (several processors), when the hours after count too
(store/limits.py, `tickets_opened_by`).
"""

from __future__ import annotations

from datetime import timedelta

from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Threaded
from gateway.store.limits import hold_senders, tickets_opened_by

WINDOW = timedelta(hours=1)


def check_flood(mail: Threaded, run: MailRun) -> Threaded | Decision:
    """Outcome `flood`: stored, no ticket, no acknowledgement; `inbox release` makes it its ticket."""
    limit = run.deps.settings.limits.new_tickets_per_sender_per_hour
    # Authenticated staff open tickets for customers by the dozen; they are not a flood.
    if limit == 0 or run.item.released or mail.staff.is_staff:
        return mail
    sender = mail.sender
    received = run.item.received_at
    hold_senders(run.session, [sender.address])  # counted and opened as one step (store/limits.py)
    opened = tickets_opened_by(run.session, sender.address, at=received, window=WINDOW)
    if opened.count < limit:
        return mail
    detail = f"{sender.address} opened {opened.count} tickets {opened.words()} (limit {limit})"
    return Decision(Outcome.FLOOD, None, detail)
