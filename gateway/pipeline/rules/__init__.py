"""Rules that recognise automated mail, Mailman style: one tiny module per rule.

Each rule module has a `name`, a `description` and `check(mail, envelope, ours) -> str | None`,
which returns why the rule matched (e.g. "Auto-Submitted: auto-replied") or None. The order in
which rules are tried is a table in `gateway.pipeline.classify`. This package also holds the small
helpers the rules share: header values, the envelope sender and `should_notify`.
"""

from __future__ import annotations

import re
from typing import Protocol

from gateway.addresses import GatewayAddresses
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


def bare(address: str) -> str:
    """An address without angle brackets or surrounding space."""
    return address.strip().strip("<>").strip()


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


# Local parts that belong to machines, compared with separators removed and in lower case, so
# "MAILER-DAEMON", "mailer_daemon", "do-not-reply" and "No.Reply" all match.
_MACHINE_WORDS = frozenset({"mailerdaemon", "postmaster", "noreply", "noreplies", "donotreply"})
_SEPARATORS = re.compile(r"[-_.]+")


def local_part(address: str) -> str:
    """The local part without any `+detail`, lower case ("" for the null sender)."""
    address = bare(address)
    local, at, _ = address.rpartition("@")
    return (local if at else address).partition("+")[0].lower()


def is_machine_local_part(address: str) -> bool:
    """True for mailer-daemon, postmaster and noreply-style local parts.

    The local part is split at separators and any run of up to three words is joined, so
    "noreply-dmarc-support", "notifications.no-reply" and "do_not_reply" match, while "norman"
    or "replies" do not.
    """
    words = [word for word in _SEPARATORS.split(local_part(address)) if word]
    for start in range(len(words)):
        for end in range(start + 1, min(start + 3, len(words)) + 1):
            if "".join(words[start:end]) in _MACHINE_WORDS:
                return True
    return False


def is_mailer_daemon(address: str) -> bool:
    return _SEPARATORS.sub("", local_part(address)) == "mailerdaemon"


def is_postmaster(address: str) -> bool:
    return local_part(address) == "postmaster"


def should_notify(address: str, *, ours: GatewayAddresses) -> bool:
    """Whether ticketgate may ever send a notification to this address (SPEC §7 loop protection).

    False for the null sender, mailer-daemon, postmaster, noreply/no-reply/donotreply/do-not-reply
    style local parts, and ticketgate's own addresses (with any `+` sub-address).
    """
    address = bare(address)
    if not address:
        return False
    if is_machine_local_part(address):
        return False
    return not ours.is_ours(address)


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
