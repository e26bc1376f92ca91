"""Rule: any `Auto-Submitted` value other than `no` (RFC 3834): mail a program sent on its own."""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import auto_submitted_keyword

name = "auto-submitted"
description = "Auto-Submitted: auto-generated, auto-notified or any other value but no."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    keyword = auto_submitted_keyword(mail)
    return f"Auto-Submitted: {keyword}" if keyword else None
