"""Builds an outgoing notification (SPEC §7 headers) so that no ticket text can inject a header.

Every value that came from a mail (titles, names, ids) goes through `one_line` (control characters
and line breaks removed, whitespace folded); addresses pass a strict shape check and go in through
`email.utils.formataddr`, which quotes or RFC 2047-encodes the display name, so a name can never
carry a second recipient; a subject that is not ASCII goes in as an encoded `email.header.Header`.

The message is built with the email package's compat32 MIME classes rather than `EmailMessage`
with `policy.SMTP`: the policy machinery parses every header it is given back into objects and
refolds it, which made building a notification cost ~3 ms of CPU against ~0.6 ms — a quarter of
what a new ticket cost while a burst of mail from many customers is acknowledged.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email import charset as email_charset
from email import policy
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate

from gateway.domain import Address
from gateway.notify.render import Rendered
from gateway.store.blobs import check_sha256

AUTO_REPLIED = "auto-replied"
AUTO_GENERATED = "auto-generated"

# A bare address we are willing to put in a header: no spaces, brackets, quotes, commas or controls.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"
_SAFE_ADDRESS = re.compile(rf"{_LOCAL}@(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+|{_LOCAL}@localhost")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
# An id between angle brackets: printable ASCII without brackets or spaces.
_SAFE_ID = re.compile(r"[!-;=?-~]{1,250}")
MAX_SUBJECT = 250


class UnsafeAddress(ValueError):
    """An address that cannot go into a header as it is (it would not be one recipient)."""


def one_line(text: str) -> str:
    """`text` as one header-safe line: CR, LF and other control characters become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())


def safe_address(address: str) -> str:
    address = address.strip()
    if not _SAFE_ADDRESS.fullmatch(address) or len(address) > 320:
        raise UnsafeAddress(f"not a deliverable address: {one_line(address)[:100]!r}")
    return address


def mailbox(person: Address) -> str:
    """A header address: the display name made one line and quoted or encoded, the address checked
    for its shape."""
    return formataddr((one_line(person.name)[:200], safe_address(person.address)), charset="utf-8")


def new_message_id(*, ref: str, outbox_id: int, domain: str) -> str:
    """An id ticketgate recognises as its own (`tg.SP-42.o17.<random>@domain`), without brackets."""
    return f"tg.{ref}.o{outbox_id}.{secrets.token_hex(6)}@{domain}"


def thread_root_id(*, ref: str, domain: str) -> str:
    """A stable id every mail about a ticket references, so clients thread them all together."""
    return f"tg.{ref}@{domain}"


def subject_for(ref: str, title: str) -> str:
    return one_line(f"[{ref}] {title}")[:MAX_SUBJECT]


@dataclass(frozen=True)
class Envelope:
    """What the relay needs besides the bytes."""

    mail_from: str  # the VERP address
    rcpt_to: str


@dataclass(frozen=True)
class Headers:
    sender: Address  # From
    to: Address
    reply_to: str
    subject: str
    message_id: str  # without angle brackets
    in_reply_to: str | None
    references: Sequence[str]
    auto_submitted: str  # AUTO_REPLIED or AUTO_GENERATED


@dataclass(frozen=True)
class FilePart:
    """A PNG from the blob store that goes with a staff notification: an inline thumbnail the HTML
    shows by `cid:` when `content_id` is set, else an attached original."""

    sha256: str
    filename: str
    content_id: str | None = None


# The header of a part whose bytes are still in the blob store: the sender fills it in
# (gateway/notify/blob_parts.py) and removes the header, so the outbox row never holds the images.
BLOB_HEADER = "X-Ticketgate-Blob"


def build_message(headers: Headers, rendered: Rendered, files: Sequence[FilePart] = ()) -> bytes:
    """The notification as bytes ready for the relay (CRLF line ends, everything encoded).

    With `files`: multipart/mixed [multipart/related [alternative, thumbnails], originals], each
    image part a placeholder naming its blob, filled in when the mail is sent."""
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(rendered.text, "plain", _body_charset(rendered.text)))
    alternative.attach(MIMEText(rendered.html, "html", _body_charset(rendered.html)))
    msg = _with_files(alternative, files)
    msg["From"] = mailbox(headers.sender)
    msg["To"] = mailbox(headers.to)
    msg["Reply-To"] = mailbox(Address(address=headers.reply_to, name=headers.sender.name))
    subject = one_line(headers.subject)[:MAX_SUBJECT]
    msg["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = _angle(headers.message_id)
    references = [_angle(mid) for mid in dict.fromkeys(headers.references) if _SAFE_ID.fullmatch(mid)]
    if headers.in_reply_to and _SAFE_ID.fullmatch(headers.in_reply_to):
        msg["In-Reply-To"] = _angle(headers.in_reply_to)
    if references:
        msg["References"] = " ".join(references)
    msg["Auto-Submitted"] = headers.auto_submitted
    # Exchange and Outlook: send no out-of-office or other automatic answer to this.
    msg["X-Auto-Response-Suppress"] = "All"
    return msg.as_bytes(policy=WIRE)


def _with_files(alternative: MIMEMultipart, files: Sequence[FilePart]) -> MIMEMultipart:
    """`alternative` alone, or wrapped as the first part of related (thumbnails) inside mixed."""
    if not files:
        return alternative
    related = MIMEMultipart("related", type="multipart/alternative")
    related.attach(alternative)
    mixed = MIMEMultipart("mixed")
    mixed.attach(related)
    for file in files:
        part = MIMEBase("image", "png")
        part[BLOB_HEADER] = check_sha256(file.sha256)
        name = one_line(file.filename)[:200] or "screenshot.png"
        # A name that is not ASCII goes in RFC 2231-encoded; either way it stays one parameter.
        filename: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
        if file.content_id is not None:
            part["Content-ID"] = _angle(file.content_id)
            part.add_header("Content-Disposition", "inline", filename=filename)
            related.attach(part)
        else:
            part.add_header("Content-Disposition", "attachment", filename=filename)
            mixed.attach(part)
    return mixed


WIRE = policy.compat32.clone(linesep="\r\n")
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP  # readable in the raw mail, unlike compat32's base64


def _body_charset(text: str) -> email_charset.Charset | str:
    """ASCII with short lines goes as it is (7bit); anything else as quoted-printable UTF-8."""
    if text.isascii() and all(len(line) <= 998 for line in text.splitlines()):
        return "us-ascii"
    return _UTF8_QP


def _angle(message_id: str) -> str:
    if not _SAFE_ID.fullmatch(message_id):
        raise ValueError(f"unsafe Message-ID {one_line(message_id)[:100]!r}")
    return f"<{message_id}>"
