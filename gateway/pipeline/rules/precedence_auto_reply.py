"""Rule: `Precedence: auto_reply`, which some autoresponders (and Exchange) write on their replies."""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import precedence

name = "precedence-auto-reply"
description = "Precedence: auto_reply."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    if "auto_reply" in precedence(mail):
        return "Precedence: auto_reply"
    return None
