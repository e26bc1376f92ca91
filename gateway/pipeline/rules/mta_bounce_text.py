"""Rule: a non-standard bounce recognised by its wording alone (Postfix, Exim, qmail, Exchange, Gmail …).

For bounces that reach us with no envelope (IMAP, pipe) and no Return-Path: both the subject
and the body must be an MTA's, so a person forwarding a bounce ("Fwd: Undeliverable: …") or
asking about one still gets a ticket.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.signs import bounce_subject, mta_signature

name = "mta-bounce-text"
description = "A bounce subject at the start of the subject and an MTA's bounce wording in the body."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    subject = bounce_subject(mail.subject)
    if subject is None:
        return None
    signature = mta_signature(mail.text)
    return f"subject {subject!r} and {signature} bounce wording" if signature else None
