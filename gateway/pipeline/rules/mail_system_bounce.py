"""Rule: a notice signed by a mail system ("Mail Delivery System", MDaemon, an e-mail gateway's
"SMTP Service") that states a delivery failure or names failed recipients as an MTA does.

Gateways and old servers send bounces from addresses that are neither mailer-daemon nor postmaster,
often under the original subject; the sender's name says what it is, and the body must say that
delivery failed, so a person whose display name happens to mention mail still gets a ticket.
"""

from __future__ import annotations

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail
from gateway.mail.bounce import notice_recipients
from gateway.mail.headers import from_mailbox
from gateway.mail.signs import failure_statement, mail_system_name, mta_signature

name = "mail-system-bounce"
description = "From a mail system's name and a delivery-failure statement or failed recipients in the body."


def check(mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None:
    name, address = from_mailbox(mail)  # "Mail Delivery System <>" has a name and no address
    system = mail_system_name(name, address)
    if system is None:
        return None
    why = mta_signature(mail.text) or failure_statement(mail.text)
    if why is None and (recipients := notice_recipients(mail.text)):
        why = f"failed recipient {recipients[0]}"
    return f"From {system!r} and body says {why!r}" if why else None
