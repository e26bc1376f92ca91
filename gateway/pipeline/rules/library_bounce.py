"""Rule: flufl.bounce (Mailman's bounce detectors) reads failed recipients from the raw mail, and the
mail carries a bounce's mark besides: bounce words in its subject or at the top of its body, a null
or machine sender, or an automated-mail header.

It catches formats none of our wording rules knows. flufl.bounce alone is not proof: on our corpus of
ordinary mail it "found" failed addresses in a Comcast reply and a uuencoded attachment, which is why
a second, independent sign is needed. It needs the raw bytes, so `classify` runs it after the rule
table, and only on mail that the table left normal or auto-generated.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.bounce import library_failed_addresses
from gateway.mail.headers import from_mailbox
from gateway.mail.signs import bounce_like, mail_system_name
from gateway.pipeline.rules import (
    auto_submitted_keyword,
    envelope_sender,
    is_machine_local_part,
    precedence,
)

name = "library-bounce"
description = "flufl.bounce reads failed recipients, and a bounce word, machine sender or automated header."

_BULK = frozenset({"bulk", "junk", "list"})


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses, raw: bytes) -> str | None:
    sign = _bounce_sign(mail, envelope)
    if sign is None:
        return None
    addresses = library_failed_addresses(raw)
    return f"flufl.bounce reads failed {addresses[0]}; {sign}" if addresses else None


def _bounce_sign(mail: ParsedMail, envelope: Envelope) -> str | None:
    """A cheap sign that the mail may be a bounce, so the library runs only on such mail."""
    if why := bounce_like(mail.subject, mail.text):
        return why
    name, address = from_mailbox(mail)
    if (address and is_machine_local_part(address)) or mail_system_name(name, address):
        return f"machine sender {address or name}"
    if envelope_sender(mail, envelope) == "":
        return "null envelope sender"
    if keyword := auto_submitted_keyword(mail):
        return f"Auto-Submitted: {keyword}"
    if bulk := _BULK.intersection(precedence(mail)):
        return f"Precedence: {sorted(bulk)[0]}"
    return None
