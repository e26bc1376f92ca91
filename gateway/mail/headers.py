"""Header readings every part of mail reading shares: a header's values, the envelope sender, the
RFC 3834 Auto-Submitted keyword and Precedence. Pure functions of a parsed mail and its envelope."""

from __future__ import annotations

import re

from gateway.addresses import bare
from gateway.domain import Envelope, ParsedMail


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
