"""Rule: an out-of-office subject, in an auto-responder's shape or with an automated-mail header.

SPEC §2: an out-of-office recognised by its subject alone is an auto-reply. Alone, the subject must
have the shape auto-responders give it ("Automatic reply: …", "Abwesenheitsnotiz: …",
"[Out of Office] …", the wording by itself), because "Out of office next week, who takes my
ticket?" is a person writing, and gets a ticket. With an automated-mail header as well (Exchange
writes `Auto-Submitted: auto-generated` and `X-Auto-Response-Suppress` on its "Automatic reply:"
mails, server-side rule replies carry `X-MS-Exchange-Inbox-Rules-Loop`) any subject that starts
with the wording will do.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.signs import auto_reply_subject, auto_reply_subject_alone
from gateway.pipeline.rules import auto_submitted_keyword, envelope_sender, first_header, precedence

name = "auto-reply-subject"
description = "An out-of-office subject, shaped as auto-responders shape it or with an automated-mail header."


def _automated_header(mail: ParsedMail, envelope: Envelope) -> str | None:
    if keyword := auto_submitted_keyword(mail):
        return f"Auto-Submitted: {keyword}"
    if values := [value for value in precedence(mail) if value in ("bulk", "junk", "list", "auto_reply")]:
        return f"Precedence: {values[0]}"
    for header in (
        "X-Auto-Response-Suppress",
        "X-MS-Exchange-Inbox-Rules-Loop",
        "X-MS-Exchange-Generated-Message-Source",
    ):
        if (value := first_header(mail, header)) is not None:
            return f"{header}: {value}"
    if envelope_sender(mail, envelope) == "":
        return "null envelope sender"
    return None


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    subject = auto_reply_subject(mail.subject) or auto_reply_subject_alone(mail.subject)
    if subject is None:
        return None
    if header := _automated_header(mail, envelope):
        return f"subject {subject!r} with {header}"
    if shaped := auto_reply_subject_alone(mail.subject):
        return f"subject {shaped!r} alone"
    return None
