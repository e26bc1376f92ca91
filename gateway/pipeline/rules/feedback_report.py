"""Rule: an RFC 5965 abuse feedback report (`multipart/report; report-type=feedback-report`)."""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.pipeline.rules.reports import report_type

name = "feedback-report"
description = "An RFC 5965 (ARF) abuse or spam complaint from a mailbox provider."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    if report_type(mail) == "feedback-report":
        return "multipart/report; report-type=feedback-report"
    return None
