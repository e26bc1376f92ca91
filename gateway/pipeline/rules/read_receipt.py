"""Rule: an RFC 8098 read receipt (`multipart/report; report-type=disposition-notification`).

A receipt answers a mail automatically, so it is treated as an auto-reply: it is recorded on
its ticket and never opens one.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules.reports import report_type

name = "read-receipt"
description = "A message disposition notification (read receipt)."

_MDN_TYPES = frozenset({"disposition-notification", "global-disposition-notification"})


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    kind = report_type(mail)
    if kind in _MDN_TYPES:
        return f"multipart/report; report-type={kind}"
    return None
