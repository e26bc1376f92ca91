"""Loop signal: `X-Auto-Response-Suppress` asking for no automatic replies (All or AutoReply).

The header is a request, not a mark of automated mail (so it does not change the kind), but it
is a request we honour: an acknowledgement is exactly the automatic reply it declines. Values
that decline only other things (OOF, DR, NDR, RN, NRN) do not stop an acknowledgement.
"""

from __future__ import annotations

import re

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import header_values

name = "response-suppress"
description = "X-Auto-Response-Suppress: All or AutoReply."

_DECLINES_REPLIES = frozenset({"all", "autoreply"})


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    for value in header_values(mail, "x-auto-response-suppress"):
        words = {word.lower() for word in re.split(r"[\s,;]+", value) if word}
        if words & _DECLINES_REPLIES:
            return f"X-Auto-Response-Suppress: {value}"
    return None
