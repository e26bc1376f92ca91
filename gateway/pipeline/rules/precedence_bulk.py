"""Rule: `Precedence: bulk`, `list` or `junk`: newsletters, list traffic and mass mailings."""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import precedence

name = "precedence-bulk"
description = "Precedence: bulk, list or junk."

_BULK = ("bulk", "list", "junk")


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    for value in precedence(mail):
        if value in _BULK:
            return f"Precedence: {value}"
    return None
