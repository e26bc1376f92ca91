"""Loop signal: the From or the envelope sender is an address that must never be notified.

mailer-daemon, postmaster and noreply-style addresses, and ticketgate's own addresses (a mail
from ourselves answered by ourselves is the shortest loop there is).
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import envelope_sender, should_notify

name = "unnotifiable-sender"
description = "From or envelope sender is mailer-daemon, postmaster, noreply-style, or one of ours."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    if mail.sender is not None and mail.sender.address and not should_notify(mail.sender.address, ours=ours):
        return f"From {mail.sender.address} is never notified"
    # The null sender ("") is a signal of its own; None means no envelope was known.
    sender = envelope_sender(mail, envelope)
    if sender and not should_notify(sender, ours=ours):
        return f"envelope sender {sender} is never notified"
    return None
