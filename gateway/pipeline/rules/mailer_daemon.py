"""Rule: mail from MAILER-DAEMON is a bounce (SPEC §2: it never opens a ticket).

No person writes as mailer-daemon; MTAs use it for bounces, delay warnings and other
delivery reports, so its mail is a bounce whatever its wording.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import is_mailer_daemon

name = "mailer-daemon"
description = "From: MAILER-DAEMON (any case or spelling with - or _)."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    if mail.sender is not None and is_mailer_daemon(mail.sender.address):
        return f"From {mail.sender.address}"
    return None
