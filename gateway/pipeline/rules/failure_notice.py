"""Rule: a delivery-failure notice that no known MTA signed: a gateway's own notice, old Exchange,
Lotus Notes, MDaemon, a plain-text notice without a DSN part, in English or the usual other languages.

The subject must be a bounce subject (anchored, so "Fwd: Undeliverable …" from a person is not one)
and the body must state a failure the way only such a notice does: a recipient-list heading
("Delivery has failed to these recipients", "La remise aux destinataires suivants a échoué"),
a failure sentence, or failed recipients written as an MTA writes them. A person asking about a
bounce in their own words still gets a ticket.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.bounce import notice_recipients
from gateway.mail.signs import bounce_subject, failure_statement

name = "failure-notice"
description = "A bounce subject and a delivery-failure statement or failed-recipient list in the body."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    subject = bounce_subject(mail.subject)
    if subject is None:
        return None
    if statement := failure_statement(mail.text):
        return f"subject {subject!r} and body says {statement!r}"
    if recipients := notice_recipients(mail.text):
        return f"subject {subject!r} and the body names failed recipient {recipients[0]}"
    return None
