"""Rule: an RFC 3464 delivery status notification (`multipart/report; report-type=delivery-status`)."""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules.reports import report_type

name = "dsn-report"
description = "An RFC 3464 delivery status notification: a bounce or delay warning."

_DSN_TYPES = frozenset({"delivery-status", "global-delivery-status"})


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    kind = report_type(mail)
    if kind in _DSN_TYPES:
        return f"multipart/report; report-type={kind}"
    return None
