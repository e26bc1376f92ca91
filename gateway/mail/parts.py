"""Parts that wrap something else: a signature to leave out, ciphertext, an opaque-signed S/MIME
entity and Outlook's winmail.dat (SPEC §13). gateway/mail/parse.py asks `read_wrapper` about every
part that is not body text before it makes it an attachment."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

from gateway.errors import ProcessingError
from gateway.mail.mime_limits import check_mime_limits
from gateway.mail.signed import encryption, is_opaque_signed, is_pkcs7, is_signature, signed_content
from gateway.mail.tnef import TnefContent, TnefUnreadable, is_tnef, read_tnef


@dataclass(frozen=True)
class Drop:
    """A signature: no text, no attachment."""


@dataclass(frozen=True)
class Encrypted:
    kind: str  # "S/MIME", "PGP/MIME"


@dataclass(frozen=True)
class Inner:
    """The MIME entity inside an opaque-signed S/MIME part, to be read as the part itself."""

    message: Message


@dataclass(frozen=True)
class TnefRead:
    content: TnefContent


@dataclass(frozen=True)
class TnefUnread:
    reason: str  # for the ticket's event: which file, and why it was kept unopened


# Each winmail.dat may take the reader up to 25 s (gateway.mail.tnef); with this many per mail, a
# mail stays well inside its 5-minute claim on the inbox (gateway.store.inbox.DEFAULT_LEASE).
TNEF_PER_MAIL = 4


@dataclass
class Budget:
    """What one mail may still ask of the readers (one per parse_mail call)."""

    tnef_left: int = TNEF_PER_MAIL


@dataclass(frozen=True)
class _InnerLimits:
    """The MIME limits' defaults (gateway.config), for an entity that the limits stage could not see
    because it was inside a PKCS#7 structure."""

    max_header_bytes: int = 256 * 1024
    max_mime_parts: int = 500
    max_mime_depth: int = 20


def read_wrapper(
    part: Message, payload: bytes, filename: str | None, budget: Budget
) -> Drop | Encrypted | Inner | TnefRead | TnefUnread | None:
    """What ``part`` wraps, or None when it is an ordinary attachment."""
    if is_signature(part):
        return Drop()
    if is_pkcs7(part):
        kind = encryption(part, payload)
        if kind is not None:
            return Encrypted(kind)
        if is_opaque_signed(part, payload):
            inner = _signed_entity(payload)
            return Inner(inner) if inner is not None else None
        return None
    if is_tnef(part.get_content_type(), filename, payload):
        name = filename or "winmail.dat"
        if budget.tnef_left <= 0:
            why = f"only the first {TNEF_PER_MAIL} winmail.dat parts of a mail are opened"
            return TnefUnread(f"{name}: not opened as Outlook TNEF: {why}; kept as a file")
        budget.tnef_left -= 1
        found = read_tnef(payload)
        if isinstance(found, TnefUnreadable):
            return TnefUnread(f"{name}: could not be read as Outlook TNEF: {found.reason}; kept as a file")
        if not (found.text or found.html or found.files):
            return None  # nothing inside (a read receipt): the winmail.dat stays, nothing is lost
        return TnefRead(found)
    return None


def _signed_entity(payload: bytes) -> Message | None:
    content = signed_content(payload)
    if content is None:
        return None
    try:
        check_mime_limits(content, _InnerLimits())
    except ProcessingError:
        return None  # over a limit: the .p7m stays an attachment, unread
    return message_from_bytes(content, policy=compat32)
