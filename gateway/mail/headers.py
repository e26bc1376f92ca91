"""Header readings every part of mail reading shares: a header's values, the envelope sender, the
RFC 3834 Auto-Submitted keyword and Precedence. Pure functions of a parsed mail and its envelope."""

from __future__ import annotations

import re
from email.utils import getaddresses

from gateway.addresses import bare
from gateway.domain import Envelope, ParsedMail


def header_values(mail: ParsedMail, name: str) -> tuple[str, ...]:
    """Every value of a header, whitespace folded; () when absent."""
    return tuple(" ".join(value.split()) for value in mail.headers.get(name.lower(), ()))


def first_header(mail: ParsedMail, name: str) -> str | None:
    values = header_values(mail, name)
    return values[0] if values else None


def from_mailbox(mail: ParsedMail) -> tuple[str, str]:
    """The display name and address of the mail's sender as written: the parsed sender, or else the
    first mailbox of ``From`` even where it is no usable address. Mail systems write a bare local part
    ("MAILER-DAEMON (Mail Delivery System)") or an empty one ("Mail Delivery System <>"), which the
    parser rightly refuses as a requester but which still says who wrote. ("", "") without a From."""
    if mail.sender is not None:
        return mail.sender.name, mail.sender.address
    value = first_header(mail, "from")
    if not value:
        return "", ""
    mailboxes = getaddresses([value])
    return (mailboxes[0][0].strip(), mailboxes[0][1].strip()) if mailboxes else ("", "")


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
