"""Parse raw mail bytes into a ParsedMail, whatever state the mail is in; the only mail-parser import.

mail-parser (``mailparser``) builds the MIME tree and supplies its forgiving address and date parsers
and its defect list. The rest is read from that tree here, because mail-parser's own flat views lose
what the pipeline needs: which parts are alternatives of each other, where an attached message starts
and ends (its text would leak into the body), and 8-bit header bytes (decoded with ``ignore``, so
letters vanish). Where mail-parser raises or reads nothing (a From line with no angle brackets, a date
it deems invalid), the standard library ``email`` package takes over for that part. Before parsing,
whatever precedes the header section is cut (an mbox "From " line, a byte-order mark, blank lines, a
separator or a tool's note: gateway.mail.rawmail.strip_envelope), and a header section broken by a junk
line or the obsolete "Name : value" form is repaired, since the email package would end the headers
there.

The contract: any bytes that start with a header section give a ParsedMail with a subject and a text
(either may be empty) and never raise; bytes with no header section raise NotAMailError.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from io import BytesIO

import mailparser

from gateway.domain import Address, ParsedAttachment, ParsedMail
from gateway.errors import NotAMailError
from gateway.mail.address_token import first_address_token
from gateway.mail.charsets import clean_text, decode_bytes, reads_ascii_as_ascii
from gateway.mail.header_fields import date_of, delivered_to, message_id, message_ids
from gateway.mail.html_text import html_to_text
from gateway.mail.media_type import media_type
from gateway.mail.parts import Budget, Drop, Encrypted, Inner, TnefRead, TnefUnread, read_wrapper
from gateway.mail.rawmail import (
    FOLD,
    LINE_BREAK,
    content_hash,
    looks_like_mail,
    repair_head,
    short_defect,
    split_head,
    strip_envelope,
)
from gateway.mail.rfc2231_repair import repair_mixed_sections
from gateway.mail.signed import ENCRYPTED_TEXT, encryption, signed_children
from gateway.mail.undeclared_charset import decode_raw_header, header_charset, text_charset

log = logging.getLogger(__name__)

__all__ = ["content_hash", "looks_like_mail", "parse_mail"]

_MAX_DEPTH = 40  # MIME nesting we walk; real mail stays under 10, deeper is an attack


# --- headers -----------------------------------------------------------------------------------------

# Lenient RFC 2047: real mailers put spaces and question marks where the RFC forbids them.
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([QqBb])\?(.*?)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def _raw_bytes(value: object) -> bytes:
    """The octets of a header value as the email package holds them (8-bit bytes as surrogates)."""
    return str(value).encode("utf-8", "surrogateescape")


def _decode_word(encoding: bytes, text: bytes) -> bytes | None:
    if encoding in (b"Q", b"q"):
        return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.replace(b"_", b" "))
    compact = re.sub(rb"[^A-Za-z0-9+/]", b"", text)
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        return None


def _decode_header(value: object, defects: list[str], raw_charset: str | None = None) -> str:
    """Unfold a header value and decode its RFC 2047 words and any raw 8-bit bytes.

    Raw 8-bit bytes are read in ``raw_charset``: the charset the mail declares or, failing that, a
    detected one (gateway.mail.undeclared_charset.header_charset).
    """
    data = LINE_BREAK.sub(b"", FOLD.sub(b"", _raw_bytes(value)))
    pieces: list[str] = []
    pending = b""  # decoded bytes of adjacent encoded words in one charset, joined before decoding
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending_charset is not None:
            pieces.append(decode_bytes(pending, pending_charset, defects))
        pending, pending_charset = b"", None

    for match in _ENCODED_WORD.finditer(data):
        between = data[position : match.start()]
        # Whitespace between two encoded words is folding, not text (RFC 2047 section 6.2).
        if between and not (pending_charset is not None and not between.strip()):
            flush()
            pieces.append(decode_raw_header(between, raw_charset, defects))
        charset = match.group(1).decode("ascii", "replace").split("*", 1)[0]
        decoded = _decode_word(match.group(2), match.group(3))
        if decoded is None:
            flush()
            pieces.append(match.group(0).decode("ascii", "replace"))
        else:
            if pending_charset is not None and pending_charset.lower() != charset.lower():
                flush()
            pending += decoded
            pending_charset = charset
        position = match.end()
    flush()
    pieces.append(decode_raw_header(data[position:], raw_charset, defects))
    return clean_text("".join(pieces)).strip()


def _is_plain(value: object) -> bool:
    """A value `_decode_header` only strips and cleans (if its charset reads ASCII as ASCII): one
    line of ASCII without an encoded word."""
    return isinstance(value, str) and value.isascii() and not any(c in value for c in ("=?", "\n", "\r"))


def _header_name(name: object) -> str:
    """A header's name, lower case, as `_headers` keys it."""
    if isinstance(name, str) and name.isascii():
        return clean_text(name).strip().lower()  # what the round trip through bytes below gives
    return clean_text(_raw_bytes(name).decode("utf-8", "replace")).strip().lower()


def _fold_spaces(text: str) -> str:
    return " ".join(text.split())


# --- addresses and date ------------------------------------------------------------------------------

_PLAUSIBLE_ADDRESS = re.compile(r"[^\s<>]+@[^\s<>@]+")


# mail-parser writes raw 8-bit bytes of a display name as the text "\\udcXX".
_ESCAPED_BYTE = re.compile(r"\\udc([89a-fA-F][0-9a-fA-F])")


def _display_name(name: str, state: _Walk) -> str:
    if _ESCAPED_BYTE.search(name):
        # Back to the original bytes (as surrogates), decoded like any raw 8-bit header text.
        escaped = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), name)
        name = _decode_header(escaped, state.defects, state.raw_charset)
    elif "=?" in name:
        # Encoded words inside quotes are literal to the RFC, but every mail client decodes them.
        name = _decode_header(name, state.defects)
    return _fold_spaces(clean_text(name)).strip("\"' ")


def _address(name: str, address: str, state: _Walk) -> Address | None:
    address = address.strip().strip("<>").strip()
    if not _PLAUSIBLE_ADDRESS.fullmatch(address):
        return None
    return Address(address=address, name=_display_name(name, state))


def _addresses(
    from_mailparser: Iterable[tuple[str, str]], header_value: str | None, state: _Walk
) -> tuple[Address, ...]:
    parsed = [a for name, addr in from_mailparser if (a := _address(name, addr, state))]
    if parsed or not header_value:
        return tuple(parsed)
    # mail-parser keeps nothing it finds ambiguous; the standard library, then a bare address, will do.
    parsed = [a for name, addr in getaddresses([header_value]) if (a := _address(name, addr, state))]
    if parsed:
        return tuple(parsed)
    token = first_address_token(header_value)
    fallback = _address(header_value[: token[0]], token[1], state) if token else None
    return (fallback,) if fallback else ()


# --- the MIME tree -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    """One piece of body: a plain text, an HTML text, or both as alternatives of each other."""

    plain: str | None = None
    html: str | None = None


@dataclass
class _Walk:
    defects: list[str]
    raw_charset: str | None
    attachments: list[ParsedAttachment] = field(default_factory=list)
    encrypted: str | None = None  # "S/MIME", "PGP/MIME": the mail holds ciphertext (gateway.mail.signed)
    unreadable: list[str] = field(default_factory=list)  # parts kept as files that could not be opened
    tnef_bodies: list[_Segment] = field(default_factory=list)  # the text where the mail has no other
    budget: Budget = field(default_factory=Budget)  # winmail.dat parts this mail may still have read


def _render_text(segments: list[_Segment]) -> str:
    texts = []
    for segment in segments:
        if segment.plain is not None and (segment.plain.strip() or segment.html is None):
            texts.append(segment.plain)
        elif segment.html is not None:
            texts.append(html_to_text(segment.html))
    return "\n".join(text.rstrip("\n") for text in texts if text.strip())


def _render_html(segments: list[_Segment]) -> str | None:
    htmls = [segment.html for segment in segments if segment.html is not None]
    return "\n".join(htmls) if htmls else None


def _walk(part: Message, state: _Walk, depth: int = 0, resource: bool = False) -> list[_Segment]:
    """Body segments of ``part``; every part that is not body text is added to the attachments."""
    if depth > _MAX_DEPTH:
        state.defects.append(f"MIME nesting deeper than {_MAX_DEPTH} not read")
        return []
    maintype = part.get_content_maintype()
    if part.is_multipart() and maintype == "message":
        # An attached mail (or a DSN's status blocks) stays one attachment; its text is not ours.
        state.attachments.append(_attachment(part, _flatten_body(part), _filename(part, state), state))
        return []
    if part.is_multipart():
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        subtype = part.get_content_subtype()
        if subtype == "encrypted":
            state.encrypted = state.encrypted or encryption(part) or "PGP/MIME"
            return [_Segment(plain=ENCRYPTED_TEXT)]  # ciphertext: no attachment, no text
        if subtype == "signed":
            children = signed_children(part, children)  # the signature is no part of the mail
        if subtype == "alternative":
            return _alternative(children, state, depth)
        if subtype == "related" and children:
            root = _related_root(part, children)
            segments = _walk(root, state, depth + 1, resource)
            for child in children:
                if child is not root:
                    _walk(child, state, depth + 1, resource=True)
            return segments
        segments = []
        for child in children:
            segments.extend(_walk(child, state, depth + 1, resource))
        return segments
    return _leaf(part, state, depth, resource)


def _alternative(children: list[Message], state: _Walk, depth: int) -> list[_Segment]:
    results = [_walk(child, state, depth + 1) for child in children]
    plain = next(
        (
            _render_text(segments)
            for segments in results
            if any(s.plain is not None and s.plain.strip() for s in segments)
        ),
        None,
    )
    html = next((_render_html(segments) for segments in reversed(results) if _render_html(segments)), None)
    if plain is None and html is None:
        return [segment for segments in results for segment in segments]
    return [_Segment(plain=plain, html=html)]


def _related_root(part: Message, children: list[Message]) -> Message:
    start = part.get_param("start")
    if isinstance(start, str) and start.strip("<> "):
        wanted = start.strip("<> ")
        for child in children:
            if str(child.get("Content-ID", "")).strip("<> ") == wanted:
                return child
    return children[0]


def _leaf(part: Message, state: _Walk, depth: int, resource: bool) -> list[_Segment]:
    ctype = media_type(part)
    disposition = part.get_content_disposition()
    filename = _filename(part, state)
    is_body_type = ctype in ("text/plain", "text/html") or (
        depth == 0 and part.get_content_maintype() in ("text", "multipart")
    )
    if resource or disposition == "attachment" or filename or not is_body_type:
        return _file(part, filename, state, depth, resource)
    payload = _payload(part)
    charset = text_charset(_content_charset(part, state.defects), payload, state.raw_charset)
    text = clean_text(decode_bytes(payload, charset, state.defects))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if ctype == "text/html":
        return [_Segment(html=text)]
    if part.get_content_maintype() == "multipart":
        state.defects.append(f"{ctype} without usable boundary read as text")
    return [_Segment(plain=text)]


def _file(part: Message, filename: str | None, state: _Walk, depth: int, resource: bool) -> list[_Segment]:
    """A part that is not body text: an attachment, unless it wraps something (gateway.mail.parts)."""
    payload = _payload(part)
    found = read_wrapper(part, payload, filename, state.budget)
    if isinstance(found, Encrypted):
        state.encrypted = state.encrypted or found.kind
        return [_Segment(plain=ENCRYPTED_TEXT)]
    if isinstance(found, Inner):
        return _walk(found.message, state, depth + 1, resource)
    if isinstance(found, TnefRead):
        state.tnef_bodies.append(_Segment(plain=found.content.text, html=found.content.html))
        state.attachments.extend(found.content.files)
        state.defects.extend(found.content.notes)
    elif not isinstance(found, Drop):
        if isinstance(found, TnefUnread):
            state.unreadable.append(found.reason)
        state.attachments.append(_attachment(part, payload, filename, state))
    return []


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    return b""


def _filename(part: Message, state: _Walk) -> str | None:
    # get_filename handles RFC 2231 (filename*=UTF-8''...) and the Content-Type name fallback; many
    # mailers instead put RFC 2047 words in the plain parameter. It is asked on a copy of the two
    # headers with raw 8-bit bytes decoded first: on the part itself they come back as U+FFFD.
    view = Message()
    for name, value in part.raw_items():
        if name.lower() in ("content-type", "content-disposition"):
            raw = LINE_BREAK.sub(b"", FOLD.sub(b"", _raw_bytes(value)))
            view[name] = decode_bytes(raw, state.raw_charset, state.defects)
    try:
        filename = view.get_filename()
    except (ValueError, LookupError, UnicodeError):
        state.defects.append("unreadable file name parameter")
        return None
    if not filename:
        return None
    return _decode_header(filename, state.defects) or None


def _attachment(part: Message, payload: bytes, filename: str | None, state: _Walk) -> ParsedAttachment:
    content_id = part.get("Content-ID")
    cid = _decode_header(content_id, state.defects).strip().strip("<>").strip() if content_id else ""
    disposition = part.get_content_disposition()
    return ParsedAttachment(
        filename=filename,
        content_type=media_type(part),
        payload=payload,
        content_id=cid or None,
        inline=disposition == "inline" or (disposition is None and bool(cid)),
    )


def _flatten_body(part: Message) -> bytes:
    """The bytes of a message/* part's content (an attached mail: its headers and body)."""
    chunks = []
    for child in part.get_payload():
        if not isinstance(child, Message):
            continue
        buffer = BytesIO()
        try:
            BytesGenerator(buffer, mangle_from_=False, policy=compat32).flatten(child)
        except (TypeError, ValueError, LookupError, UnicodeError):
            # The generator re-folds headers and may choke on damaged ones; the payload alone then.
            payload = child.get_payload(decode=True)
            buffer = BytesIO(payload if isinstance(payload, bytes) else b"")
        chunks.append(buffer.getvalue())
    return b"\n".join(chunks)


# --- assembling ParsedMail ---------------------------------------------------------------------------


def _mailparser_defects(defects: object) -> list[str]:
    found: list[str] = []
    for entry in defects if isinstance(defects, list) else []:
        if isinstance(entry, dict):
            for values in entry.values():
                found.extend(str(value) for value in (values if isinstance(values, list) else [values]))
    return [short_defect(clean_text(text)) for text in found]


def _stdlib_defects(message: Message) -> list[str]:
    return [
        f"{type(defect).__name__} in {part.get_content_type()}"
        for part in message.walk()
        for defect in getattr(part, "defects", [])
    ]


@dataclass(frozen=True)
class _MailparserView:
    """What mail-parser read well, or empty values where it failed and the fallbacks will work."""

    sender: list[tuple[str, str]]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    reply_to: list[tuple[str, str]]
    date: datetime | None


_EMPTY_VIEW = _MailparserView(sender=[], to=[], cc=[], reply_to=[], date=None)


def _pairs(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    return [(str(p[0]), str(p[1])) for p in value if isinstance(p, tuple | list) and len(p) == 2]


def _read_tree(data: bytes, defects: list[str]) -> tuple[Message, _MailparserView]:
    """The MIME tree and mail-parser's reading of it.

    When mail-parser fails, the email package alone (compat32, which keeps raw values). When that
    fails too, the headers alone. policy.default is no further fallback: it shares the feed parser
    with compat32 and fails on the same input (a NUL in an RFC 2231 charset, nesting too deep).
    Both catch every exception on purpose: these parsers take hostile input, and a mail that breaks
    them must still make its ticket, with the failure in its defects.
    """
    try:
        parsed = _HeaderReading(message_from_bytes(data))
    except Exception as error:
        defects.append(short_defect(f"mail-parser failed ({type(error).__name__}); read with email package"))
        log.debug("mail-parser failed, falling back to the email package", exc_info=True)
    else:
        return parsed.message, _mailparser_view(parsed, defects)
    try:
        message = message_from_bytes(data, policy=compat32)
    except Exception as error:
        defects.append(short_defect(f"email package failed ({type(error).__name__}); headers only"))
        log.debug("email package failed, reading the headers only", exc_info=True)
        message = BytesHeaderParser(policy=compat32).parsebytes(data)
    defects.extend(_stdlib_defects(message))
    return message, _EMPTY_VIEW


class _HeaderReading(mailparser.MailParser):
    """mail-parser for what we use it for: its forgiving address and date parsers and its defect list.

    Its own `parse` then also decodes every body part, re-encodes each attachment to base64 and
    builds two dictionaries of every header: work `_walk` and `_headers` do again their own way,
    and nearly half of what parsing a mail cost. This reads the headers (`_reset`: addresses,
    dates, Received) and each part's defects, as `parse` does first, and stops there; the
    message is the one tree every later step reads. It uses two of mail-parser's own methods,
    hence the pin to its 4.x line in pyproject.
    """

    def parse(self) -> _HeaderReading:
        self._reset()
        if self.message is not None:
            for part in self.message.walk():
                self._append_defects(part, part.get_content_type())
        return self


def _mailparser_view(parsed: mailparser.MailParser, defects: list[str]) -> _MailparserView:
    defects.extend(_mailparser_defects(parsed.defects))
    date = parsed.date if isinstance(parsed.date, datetime) and parsed.date.tzinfo else None
    view = _MailparserView(
        sender=_pairs(parsed.from_),
        to=_pairs(parsed.to),
        cc=_pairs(parsed.cc),
        reply_to=_pairs(parsed.reply_to),
        date=date,
    )
    return view


def _body(message: Message, data: bytes, state: _Walk) -> tuple[str, str | None, list[ParsedAttachment]]:
    if not message.is_multipart() and not _payload(message):
        return "", None, []
    try:
        segments = _walk(message, state)
    except (RecursionError, LookupError, ValueError, TypeError, AttributeError, UnicodeError) as error:
        # The email package can still trip over a hostile structure; the mail must make its ticket
        # all the same, so its raw body becomes the text.
        log.warning("MIME walk failed, keeping the raw body as text", exc_info=True)
        state.defects.append(
            short_defect(f"MIME structure unreadable ({type(error).__name__}); raw body kept")
        )
        _, body = split_head(data)
        return clean_text(decode_bytes(body, state.raw_charset, state.defects)), None, []
    if state.tnef_bodies and not _render_text(segments).strip():
        segments = segments + state.tnef_bodies  # the winmail.dat's body is the text where none other
    return _render_text(segments), _render_html(segments), state.attachments


def _content_charset(part: Message, defects: list[str]) -> str | None:
    try:
        return part.get_content_charset()
    except (ValueError, LookupError, UnicodeError):
        # An RFC 2231 charset parameter whose own charset is garbage (a NUL, say).
        defects.append("unreadable charset parameter")
        return None


_MAILBOX_HEADERS = ("from", "sender", "reply-to")
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _mailboxes(message: Message, state: _Walk) -> dict[str, tuple[tuple[Address, ...], ...]]:
    """From, Sender and Reply-To read for their addresses before any RFC 2047 word is decoded.

    An encoded word may hold anything, "<victim@evil.example>" or a line break and a Bcc:, and is
    display-name text whatever it holds; decoding it first would let it pass for the address.
    """
    found: dict[str, list[tuple[Address, ...]]] = {}
    for name, value in message.raw_items():
        ascii_name = isinstance(name, str) and name.isascii()  # the round trip below changes nothing
        key = (name if ascii_name else _raw_bytes(name).decode("utf-8", "replace")).strip().lower()
        if key not in _MAILBOX_HEADERS:
            continue
        text = decode_raw_header(LINE_BREAK.sub(b"", FOLD.sub(b"", _raw_bytes(value))), state.raw_charset, [])
        found.setdefault(key, []).append(_header_mailboxes(clean_text(text), state))
    return {key: tuple(values) for key, values in found.items()}


def _header_mailboxes(text: str, state: _Walk) -> tuple[Address, ...]:
    unquoted = _QUOTED_STRING.sub(" ", text).lower()
    try:
        pairs = getaddresses([text])
    except (TypeError, ValueError, IndexError):  # the stdlib's parser on hostile input
        pairs = []
    # An address inside a quoted display name ('"a@b" <>') is no address: anybody writes anything there.
    found = [
        a
        for name, address in pairs
        if address.strip().lower() in unquoted and (a := _address(name, address, state))
    ]
    if found:
        return tuple(found)
    # "Big Bug bb@bug.com": no angle brackets, which the stdlib reads as a name; the bare address then.
    token = first_address_token(_QUOTED_STRING.sub(lambda m: " " * len(m.group()), text))
    fallback = _address(text[: token[0]].strip("<> "), token[1], state) if token else None
    return (fallback,) if fallback else ()


def _headers(message: Message, state: _Walk) -> dict[str, tuple[str, ...]]:
    """Every header, decoded; a plain value (most) without `_decode_header`'s byte round trip and
    searches, ~40 % of reading the headers (tests/unit/test_parse_plain_headers.py compares)."""
    headers: dict[str, list[str]] = {}
    plain = reads_ascii_as_ascii(state.raw_charset)
    for name, value in message.raw_items():
        if plain and _is_plain(value):
            decoded = clean_text(value).strip()
        else:
            decoded = _decode_header(value, state.defects, state.raw_charset)
        headers.setdefault(_header_name(name), []).append(decoded)
    return {name: tuple(values) for name, values in headers.items()}


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one mail; raises NotAMailError only when ``raw`` has no header section at all."""
    if not looks_like_mail(raw):
        raise NotAMailError("input is empty or has no header section")
    defects: list[str] = []
    data = repair_mixed_sections(repair_head(strip_envelope(raw), defects), defects)
    message, view = _read_tree(data, defects)
    state = _Walk(defects=defects, raw_charset=header_charset(message, defects))
    headers = _headers(message, state)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    text, html, attachments = _body(message, data, state)
    senders = _addresses(view.sender, first("from"), state)
    mailboxes = _mailboxes(message, state)
    return ParsedMail(
        message_id=message_id(first("message-id")),
        subject=_fold_spaces(first("subject") or ""),
        sender=senders[0] if senders else None,
        reply_to=_addresses(view.reply_to, first("reply-to"), state),
        to=_addresses(view.to, first("to"), state),
        cc=_addresses(view.cc, first("cc"), state),
        delivered_to=delivered_to(headers.get("delivered-to", ())),
        date=date_of(view.date, first("date")),
        in_reply_to=message_ids(first("in-reply-to")),
        references=message_ids(" ".join(headers.get("references", ()))),
        text=text,
        html=html,
        attachments=tuple(attachments),
        headers=headers,
        content_type=media_type(message),
        content_hash=content_hash(raw),
        defects=tuple(dict.fromkeys(defects)),
        mailboxes=mailboxes,
        encrypted=state.encrypted,
        unreadable=tuple(state.unreadable),
    )
