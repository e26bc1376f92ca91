"""The message a notice returns: the first ``message/rfc822`` (or header-only) part a mail carries, read
for who sent it and to whom. A failure notice returns the failed mail to its sender; a person who
forwards a mail as an attachment is usually one of its recipients.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from gateway.addresses import bare
from gateway.domain import ParsedMail

RETURNED_PARTS = frozenset(
    {
        "message/rfc822",
        "message/rfc822-headers",
        "text/rfc822-headers",
        "message/global",
        "message/global-headers",
    }
)
# A returned message's headers are at its start; a long one is not read further.
_HEADER_WINDOW = 64 * 1024


@dataclass(frozen=True)
class ReturnedMessage:
    senders: frozenset[str]  # From, Sender and Return-Path, bare and lower case, "+detail" left out
    recipients: frozenset[str]  # To and Cc, the same way


def returned_message(mail: ParsedMail) -> ReturnedMessage | None:
    """Who sent the first message ``mail`` carries as a part, and to whom; None when it carries none
    (or its headers name nobody)."""
    for attachment in mail.attachments:
        if attachment.content_type not in RETURNED_PARTS:
            continue
        headers = returned_headers(
            attachment.payload[:_HEADER_WINDOW].decode("utf-8", "replace"), "from", "return-path"
        )
        if headers is None:
            continue
        senders = _addresses(headers, "from", "sender", "return-path")
        if senders:
            return ReturnedMessage(senders, _addresses(headers, "to", "cc"))
    return None


def plain(address: str) -> str:
    """An address compared the way delivery compares it: bare, lower case, without a "+detail"."""
    local, at, domain = bare(address).lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}" if at else ""


def returned_headers(text: str, *names: str) -> Message | None:
    """The returned message's headers (the first block that has one of `names`), whether or not the
    part's own MIME headers were kept in front of it; None when neither block has any."""
    # Twice: the returned message itself, or the part's own headers and then the message.
    for _ in range(2):
        headers = HeaderParser().parsestr(text, headersonly=True)
        if any(str(headers.get(name, "")).strip() for name in names):
            return headers
        inner = headers.get_payload()
        if not isinstance(inner, str) or not headers.get_content_type().startswith(
            ("message/", "text/rfc822")
        ):
            return None
        text = inner
    return None


def _addresses(headers: Message, *names: str) -> frozenset[str]:
    values = [str(value) for name in names for value in headers.get_all(name, [])]
    found = (plain(address) for _, address in getaddresses(values))
    return frozenset(address for address in found if address)
