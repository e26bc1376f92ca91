"""Builds an outgoing notification (SPEC §7 headers) so that no ticket text can inject a header.

Every value that came from a mail (titles, names, ids) goes through `one_line` (control characters
and line breaks removed, whitespace folded); addresses pass a strict shape check and go in through
`email.utils.formataddr`, which quotes or RFC 2047-encodes the display name, so a name can never
carry a second recipient; a subject that is not ASCII goes in as an encoded `email.header.Header`.

The message is built with the email package's compat32 MIME classes rather than `EmailMessage`
with `policy.SMTP`: the policy machinery parses every header it is given back into objects and
refolds it, which made building a notification cost ~3 ms of CPU against ~0.6 ms — a quarter of
what a new ticket cost while a burst of mail from many customers is acknowledged. `build_message`
skips even their generator: it writes the bytes the MIME classes give directly, for a notification
without image parts (another 0.38 → 0.07 ms, `_alternative_bytes`) and for a staff notification
with screenshots (~3 ms → ~0.2 ms, `_files_bytes`: the generator compiles a boundary regex per
multipart and re-reads every part's parameters). `_mime_message` stays as the reference:
tests/unit/test_notify_message_direct.py and test_notify_message_files.py hold the direct bytes to
its bytes on generated headers, texts, file names and Content-IDs.
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
from email.utils import encode_rfc2231, formataddr, formatdate, quote

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
    # SPEC §13 Copies: the ticket's participants, shown in Cc of every copy (each copy is still
    # delivered to its own recipient, with its own bounce address).
    cc: Sequence[Address] = ()


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
    image part a placeholder naming its blob, filled in when the mail is sent. Without (every
    acknowledgement and customer notification): the same bytes the MIME classes would give, written
    directly, which costs a fifth of their generator (see `_alternative_bytes`); with files too, the
    same bytes as the MIME classes, written directly (see `_files_bytes`)."""
    if not files:
        return _alternative_bytes(_header_lines(headers), rendered)
    return _files_bytes(_header_lines(headers), rendered, files)


def _header_lines(headers: Headers) -> list[tuple[str, str | Header]]:
    """The top-level headers, in the order they are written, every value made safe."""
    subject = one_line(headers.subject)[:MAX_SUBJECT]
    lines: list[tuple[str, str | Header]] = [
        ("From", mailbox(headers.sender)),
        ("To", mailbox(headers.to)),
        *([("Cc", ", ".join(mailbox(person) for person in headers.cc))] if headers.cc else []),
        ("Reply-To", mailbox(Address(address=headers.reply_to, name=headers.sender.name))),
        ("Subject", subject if subject.isascii() else Header(subject, "utf-8")),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", _angle(headers.message_id)),
    ]
    references = [_angle(mid) for mid in dict.fromkeys(headers.references) if _SAFE_ID.fullmatch(mid)]
    if headers.in_reply_to and _SAFE_ID.fullmatch(headers.in_reply_to):
        lines.append(("In-Reply-To", _angle(headers.in_reply_to)))
    if references:
        lines.append(("References", " ".join(references)))
    lines.append(("Auto-Submitted", headers.auto_submitted))
    # Exchange and Outlook: send no out-of-office or other automatic answer to this.
    lines.append(("X-Auto-Response-Suppress", "All"))
    return lines


def _mime_message(headers: Headers, rendered: Rendered, files: Sequence[FilePart]) -> bytes:
    """The notification built with the compat32 MIME classes: the reference `_alternative_bytes`
    and `_files_bytes` are tested against (no longer used to send)."""
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(rendered.text, "plain", _body_charset(rendered.text)))
    alternative.attach(MIMEText(rendered.html, "html", _body_charset(rendered.html)))
    msg = _with_files(alternative, files)
    for name, value in _header_lines(headers):
        msg[name] = value
    return msg.as_bytes(policy=WIRE)


_CRLF = "\r\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _alternative_bytes(header_lines: Sequence[tuple[str, str | Header]], rendered: Rendered) -> bytes:
    """multipart/alternative [text/plain, text/html], byte for byte as `_mime_message` writes it
    (`policy.compat32` with CRLF: headers folded at 78 by `email.header.Header`, bodies 7bit or
    quoted-printable UTF-8, a random boundary found in neither body). The generator behind
    `as_bytes` re-reads every part's parameters several times; this was ~70 % of queueing an
    acknowledgement inside the processing transaction (docs/performance/index.md)."""
    bodies = [_text_part("plain", rendered.text), _text_part("html", rendered.html)]
    return _multipart("alternative", bodies, _top_headers(header_lines)).encode("ascii")


def _top_headers(header_lines: Sequence[tuple[str, str | Header]]) -> str:
    """The top-level headers after the Content-Type, as the MIME classes write them."""
    return "".join([f"MIME-Version: 1.0{_CRLF}", *(_fold(name, value) for name, value in header_lines)])


def _text_part(subtype: str, text: str) -> str:
    """One text part, headers and body, without its closing line break."""
    charset = _body_charset(text)
    if isinstance(charset, str):  # us-ascii: the text as it is
        name, encoding, body = charset, "7bit", text
    else:
        name, encoding, body = "utf-8", "quoted-printable", _quoted_printable(text)
    return (
        f'Content-Type: text/{subtype}; charset="{name}"{_CRLF}MIME-Version: 1.0{_CRLF}'
        f"Content-Transfer-Encoding: {encoding}{_CRLF}{_CRLF}{_CRLF.join(_LINE_BREAK.split(body))}"
    )


def _fold(name: str, value: str | Header) -> str:
    """`Name: value` and its line break, folded as compat32 folds it (short ASCII stays as it is)."""
    if isinstance(value, str) and len(name) + 2 + len(value) <= _MAX_LINE and value.isascii():
        return f"{name}: {value}{_CRLF}"
    if isinstance(value, str) and _WORDS.fullmatch(value):
        return _fold_words(name, value.split(" "))
    header = value if isinstance(value, Header) else Header(value, header_name=name)
    return f"{name}: {header.encode(linesep=_CRLF, maxlinelen=_MAX_LINE)}{_CRLF}"


# Printable ASCII words without `;` or `,`, one space apart: the References of a notification.
_WORDS = re.compile(r"[!-+\--:<-~]+(?: [!-+\--:<-~]+)*")


def _fold_words(name: str, words: Sequence[str]) -> str:
    """`_fold` for words one space apart with none of `email.header.Header`'s preferred break
    characters (`;`, `,`) in them, as Header folds them: each line takes words while it stays within
    78 characters, the first line counting `Name: `; a word that does not fit starts the next line
    after a space, and one longer than a line stays whole on its own (on the first line, it leaves
    `Name: ` alone). Header's general folder cost ~110k instructions for a notification's two
    References (tests/unit/test_notify_message_direct.py compares the two)."""
    lines: list[str] = []
    line, length = words[0], len(name) + 2 + len(words[0])
    if length > _MAX_LINE:
        lines.append("")
        line, length = " " + words[0], 1 + len(words[0])
    for word in words[1:]:
        if length + 1 + len(word) > _MAX_LINE:
            lines.append(line)
            line, length = " " + word, 1 + len(word)
        else:
            line, length = f"{line} {word}", length + 1 + len(word)
    lines.append(line)
    return f"{name}: {_CRLF.join(lines)}{_CRLF}"


def _boundary(bodies: Sequence[str]) -> str:
    """A boundary like the email package's, that no line of either body starts with."""
    while True:
        boundary = f"{'=' * 15}{secrets.randbelow(10**19):019d}=="
        if not any(f"--{boundary}" in body for body in bodies):
            return boundary


def _multipart_type(subtype: str, boundary: str) -> str:
    """The Content-Type line of a multipart `subtype`, folded as `_fold` folds it, from a copy
    folded once.

    Every boundary `_boundary` makes is 36 characters of `=` and digits, none of which the
    folding breaks at (it breaks at `;`, `,` and white space), so the folded line is the same but
    for the boundary; folding it through `email.header.Header` on every notification was ~1 % of
    processing a mail."""
    if len(boundary) != len(_SAMPLE_BOUNDARY) or not boundary.strip("=").isdigit():
        return _fold("Content-Type", _MULTIPART_VALUES[subtype].format(boundary=boundary))
    before, after = _MULTIPART_TYPES[subtype]
    return before + boundary + after


def _files_bytes(
    header_lines: Sequence[tuple[str, str | Header]], rendered: Rendered, files: Sequence[FilePart]
) -> bytes:
    """multipart/mixed [multipart/related [alternative, thumbnails], originals], byte for byte as
    `_mime_message` writes it: each multipart's parts joined by its boundary as the compat32
    generator joins them, the image parts as `_placeholder` writes them.

    The MIME classes cost ~3 ms per staff notification with files (the generator re-reads every
    part's parameters and compiles a regex per multipart to check its boundary) against ~0.13 ms for
    the same shape without files. tests/unit/test_notify_message_files.py compares the two on
    generated headers, texts, file names and Content-IDs."""
    texts = [_text_part("plain", rendered.text), _text_part("html", rendered.html)]
    thumbnails = [_placeholder(file) for file in files if file.content_id is not None]
    originals = [_placeholder(file) for file in files if file.content_id is None]
    alternative = _multipart("alternative", texts, f"MIME-Version: 1.0{_CRLF}")
    related = _multipart("related", [alternative, *thumbnails], f"MIME-Version: 1.0{_CRLF}")
    return _multipart("mixed", [related, *originals], _top_headers(header_lines)).encode("ascii")


def _multipart(subtype: str, parts: Sequence[str], headers: str) -> str:
    """A multipart `subtype` of `parts` (each with its headers, without its closing line break):
    its Content-Type, the other `headers`, a blank line, then each part after its delimiter and the
    closing delimiter, with a boundary found in none of the parts."""
    boundary = _boundary(parts)
    body = f"{_CRLF}--{boundary}{_CRLF}".join(parts)
    return (
        f"{_multipart_type(subtype, boundary)}{headers}{_CRLF}"
        f"--{boundary}{_CRLF}{body}{_CRLF}--{boundary}--{_CRLF}"
    )


def _placeholder(file: FilePart) -> str:
    """An image part whose bytes are still in the blob store, as `_with_files` makes it with
    `MIMEBase` and `add_header`: its headers and the blank line, no body."""
    name = one_line(file.filename)[:200] or "screenshot.png"
    # A name that is not ASCII goes in RFC 2231-encoded (as `add_header` given a charset tuple);
    # either way it stays one parameter.
    filename = (
        f'filename="{quote(name)}"' if name.isascii() else f"filename*={encode_rfc2231(name, 'utf-8', '')}"
    )
    if file.content_id is not None:
        content_id = _fold("Content-ID", _angle(file.content_id))
        disposition = _fold("Content-Disposition", f"inline; {filename}")
    else:
        content_id, disposition = "", _fold("Content-Disposition", f"attachment; {filename}")
    return (
        f"Content-Type: image/png{_CRLF}MIME-Version: 1.0{_CRLF}"
        f"{_BLOB_LINE[0]}{check_sha256(file.sha256)}{_BLOB_LINE[1]}{content_id}{disposition}{_CRLF}"
    )


def fold_header(name: str, value: str) -> str:
    """`Name: value` and its line break as `policy.compat32` with CRLF writes a header it holds as a
    string (a parsed one too): the sender writes the headers of the parts it fills with it
    (gateway/notify/blob_parts.py)."""
    if "\r" in value or "\n" in value:  # parsed with its folds: compat32 hands those to Header too
        return f"{name}: {Header(value, header_name=name).encode(linesep=_CRLF, maxlinelen=_MAX_LINE)}{_CRLF}"
    return _fold(name, value)


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
_MAX_LINE = 78  # compat32's max_line_length
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP  # readable in the raw mail, unlike compat32's base64


_SAMPLE_BOUNDARY = f"{'=' * 15}{'0' * 19}=="
_MULTIPART_VALUES = {
    "alternative": 'multipart/alternative; boundary="{boundary}"',
    "related": 'multipart/related; type="multipart/alternative"; boundary="{boundary}"',
    "mixed": 'multipart/mixed; boundary="{boundary}"',
}
_MULTIPART_TYPES = {
    subtype: tuple(_fold("Content-Type", value.format(boundary=_SAMPLE_BOUNDARY)).split(_SAMPLE_BOUNDARY))
    for subtype, value in _MULTIPART_VALUES.items()
}
# A SHA-256 is 64 hex digits, which the folding never breaks: the line is folded once, around a sample.
_SAMPLE_SHA256 = "0" * 64
_BLOB_LINE = tuple(_fold(BLOB_HEADER, _SAMPLE_SHA256).split(_SAMPLE_SHA256))


# The bytes a quoted-printable body writes as they are: printable ASCII but "=", tab, CR and LF
# (email.quoprimime's body map); as characters of the Latin-1 reading of the UTF-8 bytes.
_QP_ESCAPED = re.compile("[^ -<>-~\t\r\n]")
_QP_LINE = 76  # quoprimime's maxlinelen


def _quoted_printable(text: str) -> str:
    """`text` as UTF-8 quoted-printable, the very string `_UTF8_QP.body_encode` (the email package's
    quoprimime.body_encode) gives.

    That encoder first maps every character through a table of 256 entries (`str.translate`), which
    for a Latin-1 string goes character by character through the generic mapping path: ~280k
    instructions of the ~350k an HTML notification's body cost, a quarter of building a notification.
    Here only the characters that change are replaced (a notification has a few: its non-ASCII
    letters and the `=` of HTML attributes); the soft line breaks are then made exactly as
    quoprimime makes them. tests/unit/test_notify_quoted_printable.py compares the two on
    generated text."""
    if not text:
        return text
    body = _QP_ESCAPED.sub(lambda m: f"={ord(m.group()):02X}", text.encode("utf-8").decode("latin-1"))
    encoded: list[str] = []
    for line in body.splitlines():
        # Pieces of at most _QP_LINE - 1 characters and "=", never cutting an escape in two.
        start = 0
        last_start = len(line) - 1 - _QP_LINE
        while start <= last_start:
            stop = start + _QP_LINE - 1
            if line[stop - 2] == "=":
                encoded.append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                encoded.append(line[start:stop])
                start = stop - 1
            else:
                encoded.append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # white space at the end of a line is escaped or protected
            room = start - last_start
            if room >= 3:
                end = f"={ord(line[-1]):02X}"
            elif room == 2:
                end = line[-1] + "=\n"
            else:
                end = f"=\n={ord(line[-1]):02X}"
            encoded.append(line[start:-1] + end)
        else:
            encoded.append(line[start:])
    if body[-1] in "\r\n":
        encoded.append("")
    return "\n".join(encoded)


def _body_charset(text: str) -> email_charset.Charset | str:
    """ASCII with short lines goes as it is (7bit); anything else as quoted-printable UTF-8."""
    if text.isascii() and all(len(line) <= 998 for line in text.splitlines()):
        return "us-ascii"
    return _UTF8_QP


def _angle(message_id: str) -> str:
    if not _SAFE_ID.fullmatch(message_id):
        raise ValueError(f"unsafe Message-ID {one_line(message_id)[:100]!r}")
    return f"<{message_id}>"
