"""Rule: `Auto-Submitted: auto-replied` (RFC 3834), the standard mark of vacation and other auto-replies."""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import auto_submitted_keyword

name = "auto-replied"
description = "Auto-Submitted: auto-replied."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    if auto_submitted_keyword(mail) == "auto-replied":
        return "Auto-Submitted: auto-replied"
    return None
