"""Parse raw mail bytes into a ParsedMail, whatever state the mail is in; the only mail-parser import.

mail-parser (``mailparser``) builds the MIME tree and supplies its forgiving address and date parsers
and its defect list. The rest is read from that tree here, because mail-parser's own flat views lose
what the pipeline needs: which parts are alternatives of each other, where an attached message starts
and ends (its text would leak into the body), and 8-bit header bytes (decoded with ``ignore``, so
letters vanish). Where mail-parser raises or reads nothing (a From line with no angle brackets, a date
it deems invalid), the standard library ``email`` package takes over for that part. Before parsing,
an mbox "From " line and a byte-order mark are cut, and a header section broken by a junk line or
the obsolete "Name : value" form is repaired, since the email package would end the headers there.

The contract: any bytes that start with a header section give a ParsedMail with a subject and a text
(either may be empty) and never raise; bytes with no header section raise NotAMailError.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from io import BytesIO

import mailparser

from gateway.domain import Address, ParsedAttachment, ParsedMail
from gateway.errors import NotAMailError
from gateway.pipeline.html_text import html_to_text

log = logging.getLogger(__name__)

# --- the header section, on bytes ------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"
# An mbox separator ("From alice@example.com Mon Jan  1 ..."), not an obsolete "From :" header.
_MBOX_FROM = re.compile(rb"From (?![ \t]*:)[^\r\n]*(?:\r\n|\r|\n|$)")
# RFC 5322 field name (printable ASCII but colon), with the obsolete whitespace before the colon.
_HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_OBSOLETE_COLON = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:")
# The blank line that ends the header section, after a line ending.
_BLANK_LINE = re.compile(rb"\n\r?\n")
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")

# Standard headers: a junk line in the header section is dropped only when one of these follows it,
# so that a body which lacks its blank line is not taken for headers.
_WELL_KNOWN_HEADERS = frozenset(
    {
        b"received",
        b"return-path",
        b"delivered-to",
        b"date",
        b"from",
        b"sender",
        b"to",
        b"cc",
        b"reply-to",
        b"subject",
        b"message-id",
        b"in-reply-to",
        b"references",
        b"mime-version",
        b"content-type",
        b"content-transfer-encoding",
    }
)

_MAX_DEPTH = 40  # MIME nesting we walk; real mail stays under 10, deeper is an attack
_MAX_DEFECT_LENGTH = 200


def looks_like_mail(raw: bytes) -> bool:
    """Cheap check for intake: non-empty, and a "Name: value" header line opens it (after any mbox line)."""
    data = _strip_envelope(raw)
    first_line = _LINE_BREAK.split(data[:4096], maxsplit=1)[0]
    return _HEADER_LINE.match(first_line) is not None


def content_hash(raw: bytes) -> str:
    """SHA-256 hex of From, Date, Subject and the body: equal for copies of one mail however delivered.

    Trace headers added in transit, CRLF versus LF, trailing whitespace and trailing blank lines do not
    count; one changed word in the body or in those three headers does.
    """
    head, body = _split_head(_strip_envelope(raw))
    fields = _header_fields(head)
    digest = hashlib.sha256()
    for name in (b"from", b"date", b"subject"):
        value = next((v for n, v in fields if n == name), None)
        # Length prefixes keep the fields apart: no value can be shifted into its neighbour.
        digest.update(name)
        if value is None:
            digest.update(b"\x00")
        else:
            normalised = b" ".join(value.split())
            digest.update(b"\x01" + len(normalised).to_bytes(8, "big") + normalised)
    lines = [line.rstrip() for line in _LINE_BREAK.split(body)]
    while lines and not lines[-1]:
        lines.pop()
    canonical_body = b"\n".join(lines)
    digest.update(b"body" + len(canonical_body).to_bytes(8, "big") + canonical_body)
    return digest.hexdigest()


def _strip_envelope(raw: bytes) -> bytes:
    data = raw.removeprefix(_BOM)
    match = _MBOX_FROM.match(data)
    return data[match.end() :] if match else data


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header section (with its last line ending) and body, split at the first blank line."""
    for eol in (b"\r\n", b"\n"):
        if data.startswith(eol):
            return b"", data[len(eol) :]
    match = _BLANK_LINE.search(data)
    if match is None:
        return data, b""
    return data[: match.start() + 1], data[match.end() :]


def _header_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, unfolded value) of each field in a header section."""
    fields: list[tuple[bytes, bytes]] = []
    for line in _LINE_BREAK.split(_FOLD.sub(b"", head)):
        match = _HEADER_LINE.match(line)
        if match:
            fields.append((match.group(1).lower(), line[match.end() :].strip()))
    return fields


def _repair_head(data: bytes, defects: list[str]) -> bytes:
    """Make a damaged header section readable by the email package.

    The email package ends the headers at the first line that is not a header, so one junk line in
    the middle ("quite Delivered-To: ...") turns Subject and From into body text; and it does not
    know the obsolete "Name : value" form. Junk lines followed by more transit headers are dropped.
    """
    head, body = _split_head(data)
    if not body and not data.endswith((b"\n\n", b"\r\n\r\n")):
        # No blank line anywhere: we cannot tell where headers end, so leave it to the parser.
        return data
    lines = head.splitlines(keepends=True)
    names = [_HEADER_LINE.match(line) for line in lines]
    kept: list[bytes] = []
    changed = False
    for index, line in enumerate(lines):
        if names[index] or line[:1] in (b" ", b"\t"):
            fixed = _OBSOLETE_COLON.sub(rb"\1:", line)
            changed = changed or fixed != line
            kept.append(fixed)
            continue
        later = (m.group(1).lower() for m in names[index + 1 :] if m)
        if any(name in _WELL_KNOWN_HEADERS for name in later):
            defects.append(_short(f"dropped malformed header line {line.rstrip()!r}"))
            changed = True
            continue
        kept.append(line)
    if not changed:
        return data
    return b"".join(kept) + data[len(head) :]


# --- charsets ----------------------------------------------------------------------------------------

# Labels that name no charset, or a charset under a name Python does not know, or one that real
# mail uses for a superset (WHATWG's rules: ISO-8859-1 and ASCII labels mean windows-1252).
_CHARSET_ALIASES = {
    "x-unknown": None,
    "unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "default": None,
    "8bit": None,
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "x-mac-roman": "mac_roman",
    "utf8": "utf-8",
}
# Codecs with multi-byte or shifted sequences: their label is trusted when the bytes decode in it.
# Any other label names a single-byte charset, which decodes nearly any bytes, real UTF-8 too.
_MULTIBYTE_CODECS = frozenset(
    {
        "utf-8",
        "utf-7",
        "hz",
        "shift_jis",
        "shift_jis_2004",
        "shift_jisx0213",
        "cp932",
        "euc_jp",
        "euc_jis_2004",
        "euc_jisx0213",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "big5hkscs",
        "cp950",
        "euc_kr",
        "cp949",
        "johab",
    }
)
_MULTIBYTE_PREFIXES = ("iso2022", "utf-16", "utf-32")
# Text in these may hold ASCII bytes that are not ASCII text (escape sequences, UTF-16 halves).
_NOT_ASCII_COMPATIBLE_PREFIXES = ("iso2022", "utf-7", "hz", "utf-16", "utf-32")
_WESTERN = frozenset({"cp1252", "iso8859-1"})
_CHARSET_NAME = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,39}")
_SURROGATE_ESCAPES = re.compile(r"[\udc80-\udcff]")
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")
# Control characters that mean nothing in text and that PostgreSQL refuses (NUL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _codec(label: str | None) -> str | None:
    """Python codec name for a MIME charset label, or None when unknown or absent."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _CHARSET_ALIASES:
        name = _CHARSET_ALIASES[name] or ""
    if not _CHARSET_NAME.fullmatch(name):
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _windows_1252(data: bytes) -> str:
    # The five bytes cp1252 leaves undefined are read as Latin-1, so this never fails.
    text = data.decode("cp1252", "surrogateescape")
    return _SURROGATE_ESCAPES.sub(lambda m: chr(ord(m.group()) - 0xDC00), text)


def _has_utf8_sequence(data: bytes) -> bool:
    return any(ord(char) > 0x7F for char in data.decode("utf-8", "ignore"))


def _is_multibyte(codec: str) -> bool:
    return codec in _MULTIBYTE_CODECS or codec.startswith(_MULTIBYTE_PREFIXES)


def _decode_bytes(data: bytes, charset: str | None, defects: list[str]) -> str:
    """Text of ``data`` in its declared charset, surviving unknown, absent and lying labels.

    A multi-byte label is trusted when the bytes decode in it. Otherwise non-ASCII bytes that are
    valid UTF-8 are UTF-8 whatever the label says (text in a single-byte charset is practically
    never valid UTF-8), then the label's own charset, and without a usable label windows-1252.
    """
    codec = _codec(charset)
    if charset and codec is None:
        defects.append(_short(f"unknown charset {charset!r}"))
    if data.isascii() and not (codec and codec.startswith(_NOT_ASCII_COMPATIBLE_PREFIXES)):
        return data.decode("ascii")
    if codec is not None and _is_multibyte(codec):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if codec not in (None, "utf-8"):
            defects.append(_short(f"text labelled {charset!r} is UTF-8"))
        return text
    if codec == "utf-8":
        if _has_utf8_sequence(data):
            # Real UTF-8 with some damage: keep the good characters.
            defects.append("invalid UTF-8 bytes replaced")
            return data.decode("utf-8", "replace")
        defects.append("text labelled UTF-8 is in a legacy charset; read as windows-1252")
        return _windows_1252(data)
    if codec is None or codec in _WESTERN:
        return _windows_1252(data)
    if not _is_multibyte(codec):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass  # a single-byte charset with a few undefined positions (cp1251's 0x98, say)
    defects.append(_short(f"bytes not valid in {charset!r} replaced"))
    return data.decode(codec, "replace")


def _clean(text: str) -> str:
    return _CONTROL.sub("", _LONE_SURROGATES.sub("\ufffd", text))


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

    Raw 8-bit bytes are tried in ``raw_charset`` (the charset the mail's text declares: senders
    that put raw bytes in headers write them in the charset of their body), then UTF-8, then
    windows-1252.
    """
    data = _LINE_BREAK.sub(b"", _FOLD.sub(b"", _raw_bytes(value)))
    pieces: list[str] = []
    pending = b""  # decoded bytes of adjacent encoded words in one charset, joined before decoding
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending_charset is not None:
            pieces.append(_decode_bytes(pending, pending_charset, defects))
        pending, pending_charset = b"", None

    for match in _ENCODED_WORD.finditer(data):
        between = data[position : match.start()]
        # Whitespace between two encoded words is folding, not text (RFC 2047 section 6.2).
        if between and not (pending_charset is not None and not between.strip()):
            flush()
            pieces.append(_decode_bytes(between, raw_charset, defects))
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
    pieces.append(_decode_bytes(data[position:], raw_charset, defects))
    return _clean("".join(pieces)).strip()


def _fold_spaces(text: str) -> str:
    return " ".join(text.split())


def _message_ids(value: str | None) -> tuple[str, ...]:
    """Message ids of an In-Reply-To/References value, brackets off; tolerant of missing brackets."""
    if not value:
        return ()
    bracketed = [re.sub(r"\s+", "", m) for m in re.findall(r"<([^<>]*)>", value)]
    candidates = bracketed or [token for token in re.split(r"[\s,;]+", value) if "@" in token]
    seen: dict[str, None] = {}
    for candidate in candidates:
        if candidate:
            seen.setdefault(candidate, None)
    return tuple(seen)


def _message_id(value: str | None) -> str | None:
    ids = _message_ids(value)
    if ids:
        return ids[0]
    bare = (value or "").strip().strip("<>").strip()
    return bare.split()[0] if bare else None


# --- addresses and date ------------------------------------------------------------------------------

_ADDRESS_TOKEN = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+")
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
    return _fold_spaces(_clean(name)).strip("\"' ")


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
    token = _ADDRESS_TOKEN.search(header_value)
    fallback = _address(header_value[: token.start()], token.group(), state) if token else None
    return (fallback,) if fallback else ()


def _date(from_mailparser: datetime | None, header_value: str | None) -> datetime | None:
    if from_mailparser is not None:
        return from_mailparser
    if not header_value:
        return None
    try:
        parsed = parsedate_to_datetime(header_value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


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
    ctype = part.get_content_type()
    disposition = part.get_content_disposition()
    filename = _filename(part, state)
    is_body_type = ctype in ("text/plain", "text/html") or (
        depth == 0 and part.get_content_maintype() in ("text", "multipart")
    )
    if resource or disposition == "attachment" or filename or not is_body_type:
        state.attachments.append(_attachment(part, _payload(part), filename, state))
        return []
    charset = _content_charset(part)
    text = _clean(_decode_bytes(_payload(part), charset, state.defects))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if ctype == "text/html":
        return [_Segment(html=text)]
    if part.get_content_maintype() == "multipart":
        state.defects.append(f"{ctype} without usable boundary read as text")
    return [_Segment(plain=text)]


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
            raw = _LINE_BREAK.sub(b"", _FOLD.sub(b"", _raw_bytes(value)))
            view[name] = _decode_bytes(raw, state.raw_charset, state.defects)
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
        content_type=part.get_content_type(),
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


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DEFECT_LENGTH else text[: _MAX_DEFECT_LENGTH - 1] + "…"


def _mailparser_defects(defects: object) -> list[str]:
    found: list[str] = []
    for entry in defects if isinstance(defects, list) else []:
        if isinstance(entry, dict):
            for values in entry.values():
                found.extend(str(value) for value in (values if isinstance(values, list) else [values]))
    return [_short(_clean(text)) for text in found]


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
        parsed = mailparser.parse_from_bytes(data)
    except Exception as error:
        defects.append(_short(f"mail-parser failed ({type(error).__name__}); read with email package"))
        log.debug("mail-parser failed, falling back to the email package", exc_info=True)
    else:
        return parsed.message, _mailparser_view(parsed, defects)
    try:
        message = message_from_bytes(data, policy=compat32)
    except Exception as error:
        defects.append(_short(f"email package failed ({type(error).__name__}); headers only"))
        log.debug("email package failed, reading the headers only", exc_info=True)
        message = BytesHeaderParser(policy=compat32).parsebytes(data)
    defects.extend(_stdlib_defects(message))
    return message, _EMPTY_VIEW


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
        state.defects.append(_short(f"MIME structure unreadable ({type(error).__name__}); raw body kept"))
        _, body = _split_head(data)
        return _clean(_decode_bytes(body, state.raw_charset, state.defects)), None, []
    return _render_text(segments), _render_html(segments), state.attachments


def _text_charset(message: Message) -> str | None:
    """The first charset the mail declares for its text, the likely one of raw 8-bit header bytes."""
    for part in message.walk():
        if part.get_content_maintype() == "text" and (charset := _content_charset(part)):
            return charset
    return None


def _content_charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except (ValueError, LookupError, UnicodeError):
        # An RFC 2231 charset parameter whose own charset is garbage (a NUL, say).
        return None


def _headers(message: Message, state: _Walk) -> dict[str, tuple[str, ...]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        key = _clean(_raw_bytes(name).decode("utf-8", "replace")).strip().lower()
        headers.setdefault(key, []).append(_decode_header(value, state.defects, state.raw_charset))
    return {name: tuple(values) for name, values in headers.items()}


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one mail; raises NotAMailError only when ``raw`` has no header section at all."""
    if not looks_like_mail(raw):
        raise NotAMailError("input is empty or has no header section")
    defects: list[str] = []
    data = _repair_head(_strip_envelope(raw), defects)
    message, view = _read_tree(data, defects)
    state = _Walk(defects=defects, raw_charset=_text_charset(message))
    headers = _headers(message, state)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    text, html, attachments = _body(message, data, state)
    senders = _addresses(view.sender, first("from"), state)
    return ParsedMail(
        message_id=_message_id(first("message-id")),
        subject=_fold_spaces(first("subject") or ""),
        sender=senders[0] if senders else None,
        reply_to=_addresses(view.reply_to, first("reply-to"), state),
        to=_addresses(view.to, first("to"), state),
        cc=_addresses(view.cc, first("cc"), state),
        delivered_to=_delivered_to(headers.get("delivered-to", ())),
        date=_date(view.date, first("date")),
        in_reply_to=_message_ids(first("in-reply-to")),
        references=_message_ids(" ".join(headers.get("references", ()))),
        text=text,
        html=html,
        attachments=tuple(attachments),
        headers=headers,
        content_type=message.get_content_type().lower(),
        content_hash=content_hash(raw),
        defects=tuple(dict.fromkeys(defects)),
    )


def _delivered_to(values: Iterable[str]) -> tuple[str, ...]:
    found = []
    for value in values:
        address = parseaddr(value)[1] or value.strip().strip("<>")
        if address:
            found.append(address)
    return tuple(found)
