"""Stage: a mail to `support+tickets@` asks for the sender's own tickets, and opens none (SPEC §12).

It runs before threading, so such a mail never joins a ticket, whatever ref or reply token it
carries, and never opens one. The list goes to the `From` address only: never to Reply-To, Sender or
the envelope sender, so whoever forges a From only sends its owner their own list. Automated mail
(the loop signals of SPEC §7, which the classify stage has read) and a sender past
`views.my_tickets_per_hour` get nothing; the mail is stored with the outcome and the reason either way.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail, TicketsRequested
from gateway.pipeline.new_ticket import recipient_addresses
from gateway.pipeline.requester import find_requester
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.store import outbox

TEMPLATE = "my_tickets"
WINDOW = timedelta(hours=1)


def asks_for_tickets(mail: ParsedMail, envelope: Envelope, *, ours: GatewayAddresses, word: str) -> bool:
    """Whether the mail was sent to the `+word` sub-address of one of our addresses."""
    for address in recipient_addresses(mail, envelope):
        match = ours.match(address)
        if match is not None and match.detail is not None and match.detail.lower() == word:
            return True
    return False


def my_tickets_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Outcome `my_tickets`: no ticket; the list is queued for the From address unless the mail is
    automated, names no From address, or that address had its hourly share of lists."""
    mail = ctx.parsed
    views = deps.settings.views
    if not asks_for_tickets(mail, ctx.item.envelope, ours=deps.ours, word=views.my_tickets_word):
        return None
    assert ctx.classification is not None

    def held(why: str) -> ProcessResult:
        return ProcessResult(ctx.item.id, Outcome.MY_TICKETS, None, f"ticket list not sent: {why}")

    if ctx.classification.suppress_notifications:
        return held(f"automated mail ({ctx.classification.reason})")
    found = find_requester(mail, ctx.item.envelope)
    if found.source != "From":
        return held("no usable From address (the list goes to From only)")
    address = found.address.address
    limit = views.my_tickets_per_hour
    since = ctx.item.received_at - WINDOW
    sent = outbox.acks_since(ctx.session, address, template=TEMPLATE, since=since)
    if sent >= limit:
        return held(f"{address} was sent {sent} ticket lists in the hour before this mail (limit {limit})")
    ctx.happenings.append(
        TicketsRequested(inbox_id=ctx.item.id, requester=found.address, message_id=mail.message_id)
    )
    return ProcessResult(ctx.item.id, Outcome.MY_TICKETS, None, f"ticket list queued for {address}")
