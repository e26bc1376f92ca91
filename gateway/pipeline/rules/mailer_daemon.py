"""Rule: mail from MAILER-DAEMON is a bounce (SPEC §2: it never opens a ticket).

No person writes as mailer-daemon; MTAs use it for bounces, delay warnings and other
delivery reports, so its mail is a bounce whatever its wording. Some write it without a domain
("MAILER-DAEMON (Mail Delivery System)"): the local part alone says it.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.headers import from_mailbox
from gateway.pipeline.rules import is_mailer_daemon

name = "mailer-daemon"
description = "From: MAILER-DAEMON (any case or spelling with - or _)."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    _, address = from_mailbox(mail)
    return f"From {address}" if address and is_mailer_daemon(address) else None
