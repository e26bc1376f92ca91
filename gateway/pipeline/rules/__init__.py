"""Rules that recognise automated mail, Mailman style: one tiny module per rule.

Each rule module has a `name`, a `description` and `check(mail, envelope, ours) -> str | None`,
which returns why the rule matched (e.g. "Auto-Submitted: auto-replied") or None. The order in
which rules are tried is a table in `gateway.pipeline.classify`. This package also holds the small
helpers the rules share: header values and the envelope sender; `should_notify` and the
address helpers it needs live in gateway/addresses.py (notifications use them too) and are
imported here for the rules.
"""

from __future__ import annotations

import re
from typing import Protocol

from gateway.addresses import GatewayAddresses, bare
from gateway.addresses import is_machine_local_part as is_machine_local_part  # for the rules
from gateway.addresses import is_mailer_daemon as is_mailer_daemon
from gateway.addresses import is_postmaster as is_postmaster
from gateway.addresses import local_part as local_part
from gateway.addresses import should_notify as should_notify
from gateway.domain import Envelope, ParsedMail


class Rule(Protocol):
    """What every rule module provides (modules satisfy this protocol structurally)."""

    name: str
    description: str

    def check(self, mail: ParsedMail, envelope: Envelope, ours: GatewayAddresses) -> str | None: ...


def header_values(mail: ParsedMail, name: str) -> tuple[str, ...]:
    """Every value of a header, whitespace folded; () when absent."""
    return tuple(" ".join(value.split()) for value in mail.headers.get(name.lower(), ()))


def first_header(mail: ParsedMail, name: str) -> str | None:
    values = header_values(mail, name)
    return values[0] if values else None


# Transports where the envelope is real: an empty MAIL FROM there is the null sender itself.
_SMTP_SOURCES = frozenset({"smtp", "lmtp"})


def envelope_sender(mail: ParsedMail, envelope: Envelope) -> str | None:
    """The reverse-path: the address, "" for the null sender (`MAIL FROM:<>`), None when unknown.

    SMTP and LMTP tell us MAIL FROM. IMAP and pipe intake have no envelope of their own, so an
    empty `mail_from` there means "not known" and the `Return-Path` that the final MTA wrote is
    the evidence instead (`Return-Path: <>` is a null sender).
    """
    mail_from = bare(envelope.mail_from)
    if mail_from:
        return mail_from
    if envelope.source in _SMTP_SOURCES:
        return ""
    # The topmost Return-Path is the one written at final delivery.
    return_path = first_header(mail, "return-path")
    return None if return_path is None else bare(return_path)


def auto_submitted_keyword(mail: ParsedMail) -> str | None:
    """The RFC 3834 Auto-Submitted keyword ("auto-replied", "auto-generated" …) other than "no"; else None.

    Parameters and comments are dropped: "auto-generated (failure)" gives "auto-generated".
    """
    for value in header_values(mail, "auto-submitted"):
        keyword = re.split(r"[\s;(]", value.strip(), maxsplit=1)[0].lower()
        if keyword and keyword != "no":
            return keyword
    return None


def precedence(mail: ParsedMail) -> tuple[str, ...]:
    """Every Precedence value, lower case, "auto-reply" spelled "auto_reply"."""
    return tuple(value.strip().lower().replace("-", "_") for value in header_values(mail, "precedence"))
