"""Rule: mail from postmaster is treated as a bounce (SPEC §2: it never opens a ticket).

Postmaster mailboxes send delivery reports and abuse complaints; SPEC §2 keeps all of it out of
the ticket queue, so postmaster mail is recorded as a bounce whatever its wording.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.headers import from_mailbox
from gateway.mail.signs import bounce_like
from gateway.pipeline.rules import is_postmaster

name = "postmaster-bounce"
description = "From: postmaster (a bounce, or another report; never a ticket)."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    _, address = from_mailbox(mail)  # with or without a domain
    if not address or not is_postmaster(address):
        return None
    why = bounce_like(mail.subject, mail.text)
    return f"From {address}, {why}" if why else f"From {address}"
