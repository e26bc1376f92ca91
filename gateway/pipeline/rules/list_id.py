"""Rule: a `List-Id` header (RFC 2919): the mail came through a mailing list.

`List-Unsubscribe` alone is deliberately not a sign: one-to-one mail sent by people through
CRMs and sales tools carries it too, and that mail deserves an acknowledgement.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules import first_header

name = "list-id"
description = "List-Id present."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    value = first_header(mail, "list-id")
    return f"List-Id: {value}" if value else None
