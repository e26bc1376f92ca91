"""Rules that recognise automated mail, Mailman style: one tiny module per rule.

Each rule module has a `name`, a `description` and `check(mail, envelope, ours) -> str | None`,
which returns why the rule matched (e.g. "Auto-Submitted: auto-replied") or None. The order in
which rules are tried is a table in `gateway.pipeline.classify`. The helpers the rules share
are imported here for them: header values and the envelope sender from gateway/mail/headers.py,
`should_notify` and the address helpers from gateway/addresses.py (notifications use them too).
"""

from __future__ import annotations

from typing import Protocol

from gateway.addresses import GatewayAddresses
from gateway.addresses import is_machine_local_part as is_machine_local_part  # for the rules
from gateway.addresses import is_mailer_daemon as is_mailer_daemon
from gateway.addresses import is_postmaster as is_postmaster
from gateway.addresses import local_part as local_part
from gateway.addresses import should_notify as should_notify
from gateway.domain import Envelope, ParsedMail
from gateway.mail.headers import auto_submitted_keyword as auto_submitted_keyword  # for the rules
from gateway.mail.headers import envelope_sender as envelope_sender
from gateway.mail.headers import first_header as first_header
from gateway.mail.headers import header_values as header_values
from gateway.mail.headers import precedence as precedence


class Rule(Protocol):
    """What every rule module provides (modules satisfy this protocol structurally)."""

    name: str
    description: str

    def check(self, mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None: ...
