"""Rule: a notice that returns a message to the one who sent it, with bounce wording: a mail gateway's
or filter's own failure notice, from an ordinary address, under any subject.

Gateways and filters write their notices from addresses that are neither mailer-daemon nor postmaster,
under the original subject or one of their own, and attach the failed mail as ``message/rfc822``. That
is the evidence: the attached message was sent by the notice's recipient (or by us) — it has come
back — and the notice's own words say that delivery failed. A person who forwards a mail they
received as an attachment is one of its recipients, so their mail stays a customer's, whatever it says.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.headers import from_mailbox
from gateway.mail.returned_message import plain, returned_message
from gateway.mail.signs import bounce_like

name = "returned-to-sender"
description = "Returns an attached message to its own sender (or to us) and says that delivery failed."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    if not mail.attachments:
        return None
    returned = returned_message(mail)
    if returned is None:
        return None
    _, address = from_mailbox(mail)
    if plain(address) in returned.recipients:
        return None  # its recipient forwarding it
    notice_to = {
        plain(value)
        for value in (
            *envelope.rcpt_tos,
            *mail.delivered_to,
            *(a.address for a in mail.to),
            *(a.address for a in mail.cc),
        )
    }
    back = sorted(s for s in returned.senders if s in notice_to or ours.match(s) is not None)
    if not back:
        return None
    why = bounce_like(mail.subject, mail.text)
    return f"returns {back[0]}'s own message, {why}" if why else None
