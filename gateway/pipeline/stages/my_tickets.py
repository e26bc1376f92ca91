"""Stage my_tickets: a mail to `support+tickets@` asks for the sender's own tickets, and opens none
(SPEC §12).

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
from gateway.mail.requester import find_requester
from gateway.pipeline.new_ticket_plan import recipient_addresses
from gateway.pipeline.stage_values import Classified, Decision, MailRun, Outcome
from gateway.store import outbox
from gateway.store.limits import hold_senders

TEMPLATE = "my_tickets"
WINDOW = timedelta(hours=1)


def asks_for_tickets(mail: ParsedMail, envelope: Envelope, *, ours: GatewayAddresses, word: str) -> bool:
    """Whether the mail was sent to the `+word` sub-address of one of our addresses."""
    for address in recipient_addresses(mail, envelope):
        match = ours.match(address)
        if match is not None and match.detail is not None and match.detail.lower() == word:
            return True
    return False


def my_tickets(mail: Classified, run: MailRun) -> Classified | Decision:
    """Outcome `my_tickets`: no ticket; the list is queued for the From address unless the mail is
    automated, names no From address, or that address had its hourly share of lists."""
    parsed, item = mail.mail, run.item
    views = run.deps.settings.views
    if not asks_for_tickets(parsed, item.envelope, ours=run.deps.ours, word=views.my_tickets_word):
        return mail

    def held(why: str) -> Decision:
        return Decision(Outcome.MY_TICKETS, None, f"ticket list not sent: {why}")

    if mail.classification.suppress_notifications:
        return held(f"automated mail ({mail.classification.reason})")
    found = find_requester(parsed, item.envelope)
    if found.source != "From":
        return held("no usable From address (the list goes to From only)")
    address = found.address.address
    limit = views.my_tickets_per_hour
    since = item.received_at - WINDOW
    hold_senders(run.session, [address])  # counted and queued as one step (store/limits.py)
    sent = outbox.acks_since(run.session, address, template=TEMPLATE, since=since)
    if sent >= limit:
        return held(f"{address} was sent {sent} ticket lists in the hour before this mail (limit {limit})")
    asked = TicketsRequested(inbox_id=item.id, requester=found.address, message_id=parsed.message_id)
    return Decision(Outcome.MY_TICKETS, None, f"ticket list queued for {address}", (asked,))
