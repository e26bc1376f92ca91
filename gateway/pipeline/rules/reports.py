"""What kind of `multipart/report` (RFC 6522) a mail is, from its Content-Type or, failing that, its parts."""

from __future__ import annotations

import re

from gateway.domain import ParsedMail
from gateway.pipeline.rules import first_header

_REPORT_TYPE = re.compile(r"""(?:^|;)\s*report-type\s*=\s*"?\s*([A-Za-z0-9_.-]+)""", re.IGNORECASE)

# The machine-readable part each report type carries, for reports whose Content-Type lost its
# report-type parameter on the way (broken MTAs, forwarding gateways).
_PART_TO_TYPE = {
    "message/delivery-status": "delivery-status",
    "message/global-delivery-status": "global-delivery-status",
    "message/feedback-report": "feedback-report",
    "message/disposition-notification": "disposition-notification",
    "message/global-disposition-notification": "global-disposition-notification",
}


def report_type(mail: ParsedMail) -> str | None:
    """The report-type of a top-level multipart/report, lower case; None for any other mail."""
    if mail.content_type.lower() != "multipart/report":
        return None
    content_type = first_header(mail, "content-type") or ""
    if match := _REPORT_TYPE.search(content_type):
        return match.group(1).lower()
    for attachment in mail.attachments:
        inferred = _PART_TO_TYPE.get(attachment.content_type.lower())
        if inferred:
            return inferred
    return None
