"""What kind of `multipart/report` (RFC 6522) a mail is, from its Content-Type or, failing that, its parts:
their media type or, where a damaged part header hides it, the fields the machine-readable part starts
with ("Reporting-MTA:", "Feedback-Type:" …)."""

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


# The fields only each machine-readable part starts a line with (RFC 3464, 5965, 8098), looked for in
# the first bytes of a part.
_FIELDS_WINDOW = 4096
_TYPE_FIELDS = (
    (
        "delivery-status",
        re.compile(r"^(?:Reporting-MTA|Final-Recipient|Original-Recipient)\s*:", re.I | re.M),
    ),
    ("feedback-report", re.compile(r"^Feedback-Type\s*:", re.I | re.M)),
    ("disposition-notification", re.compile(r"^(?:Reporting-UA|Disposition)\s*:", re.I | re.M)),
)


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
    # A part whose header was too damaged to name its type: the parser kept it as an attachment of
    # some other type, or as text.
    for text in (*(a.payload[:_FIELDS_WINDOW].decode("latin-1") for a in mail.attachments), mail.text):
        for kind, fields in _TYPE_FIELDS:
            if fields.search(text[:_FIELDS_WINDOW]):
                return kind
    return None
