"""A mail's header section read on bytes, without parsing the MIME tree: cheap enough for intake.

Intake uses it to tell a mail from garbage before storing; the pipeline uses it for the content
hash that identifies copies of one mail, and to repair damaged header sections before parsing.
Standard library only, so intake never needs the pipeline.
"""

from __future__ import annotations

import hashlib
import re

_BOM = b"\xef\xbb\xbf"
# An mbox separator ("From alice@example.com Mon Jan  1 ..."), not an obsolete "From :" header.
_MBOX_FROM = re.compile(rb"From (?![ \t]*:)[^\r\n]*(?:\r\n|\r|\n|$)")
# RFC 5322 field name (printable ASCII but colon), with the obsolete whitespace before the colon.
HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_OBSOLETE_COLON = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:")
# The blank line that ends the header section, after a line ending.
_BLANK_LINE = re.compile(rb"\n\r?\n")
LINE_BREAK = re.compile(rb"\r\n|\r|\n")
FOLD = re.compile(rb"\r?\n(?=[ \t])")
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")

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

MAX_DEFECT_LENGTH = 200


def looks_like_mail(raw: bytes) -> bool:
    """Cheap check for intake: a "Name: value" header line opens it, after any leading junk."""
    data = strip_envelope(raw)
    first_line = LINE_BREAK.split(data[:4096], maxsplit=1)[0]
    return HEADER_LINE.match(first_line) is not None


def content_hash(raw: bytes) -> str:
    """SHA-256 hex of From, Date, Subject and the body: equal for copies of one mail however delivered.

    Trace headers added in transit, CRLF versus LF, trailing whitespace and trailing blank lines do not
    count; one changed word in the body or in those three headers does.
    """
    head, body = split_head(strip_envelope(raw))
    fields = header_fields(head)
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
    lines = [line.rstrip() for line in LINE_BREAK.split(body)]
    while lines and not lines[-1]:
        lines.pop()
    canonical_body = b"\n".join(lines)
    digest.update(b"body" + len(canonical_body).to_bytes(8, "big") + canonical_body)
    return digest.hexdigest()


def strip_envelope(raw: bytes) -> bytes:
    """The mail from its header section on: without a byte-order mark, an mbox `From ` line, blank
    lines, or other leading junk (SPEC §2) before a header section found within the first lines."""
    data = raw.removeprefix(_BOM)
    match = _MBOX_FROM.match(data)
    data = data[match.end() :] if match else data
    if HEADER_LINE.match(data):
        return data  # the common case: the header section opens the mail
    start = _header_section_start(data)
    return data if start is None else data[start:]


# Where a header section is looked for below leading junk: a tool's note or a separator is a few
# lines, and a mail's body lines must not be searched for something that looks like headers.
JUNK_WINDOW_LINES = 30
JUNK_WINDOW_BYTES = 8192
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n|$)")


def _header_section_start(data: bytes) -> int | None:
    """Offset of the first header section below leading junk, or None when there is none.

    Blank lines alone before a header line are junk enough. Otherwise the section must look like
    one: two header lines or more, at least one of them a standard header, running (with their
    continuation lines) up to a blank line or the end, so that a text which merely mentions
    "Note: ..." is not taken for a mail.
    """
    lines: list[tuple[int, bytes]] = []
    offset = 0
    for match in _LINE.finditer(data[:JUNK_WINDOW_BYTES]):
        if not match.group() or len(lines) >= JUNK_WINDOW_LINES:
            break
        lines.append((offset, match.group()))
        offset = match.end()
    first = next((index for index, (_, line) in enumerate(lines) if line.strip()), None)
    if first is not None and HEADER_LINE.match(lines[first][1]):
        return lines[first][0]
    for index, (start, line) in enumerate(lines):
        if HEADER_LINE.match(line) and _is_header_block(lines[index:]):
            return start
    return None


def _is_header_block(lines: list[tuple[int, bytes]]) -> bool:
    names: list[bytes] = []
    for _, line in lines:
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t") and names:
            continue  # a folded continuation of the header above
        match = HEADER_LINE.match(line)
        if match is None:
            return False
        names.append(match.group(1).lower())
    return len(names) >= 2 and any(name in _WELL_KNOWN_HEADERS for name in names)


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Header section (with its last line ending) and body, split at the first blank line."""
    for eol in (b"\r\n", b"\n"):
        if data.startswith(eol):
            return b"", data[len(eol) :]
    match = _BLANK_LINE.search(data)
    if match is None:
        return data, b""
    return data[: match.start() + 1], data[match.end() :]


def header_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, unfolded value) of each field in a header section."""
    fields: list[tuple[bytes, bytes]] = []
    for line in LINE_BREAK.split(FOLD.sub(b"", head)):
        match = HEADER_LINE.match(line)
        if match:
            fields.append((match.group(1).lower(), line[match.end() :].strip()))
    return fields


def repair_head(data: bytes, defects: list[str]) -> bytes:
    """Make a damaged header section readable by the email package.

    The email package ends the headers at the first line that is not a header, so one junk line in
    the middle ("quite Delivered-To: ...") turns Subject and From into body text; and it does not
    know the obsolete "Name : value" form. Junk lines followed by more transit headers are dropped.
    """
    head, body = split_head(data)
    if not body and not data.endswith((b"\n\n", b"\r\n\r\n")):
        # No blank line anywhere: we cannot tell where headers end, so leave it to the parser.
        return data
    lines = head.splitlines(keepends=True)
    names = [HEADER_LINE.match(line) for line in lines]
    kept: list[bytes] = []
    changed = False
    for index, line in enumerate(lines):
        if names[index] or line[:1] in (b" ", b"\t"):
            obsolete = _OBSOLETE_COLON.match(line)  # matched first: a substitution costs more
            fixed = fold_long_line(obsolete.group(1) + line[obsolete.end() - 1 :] if obsolete else line)
            changed = changed or fixed != line
            kept.append(fixed)
            continue
        later = (m.group(1).lower() for m in names[index + 1 :] if m)
        if any(name in _WELL_KNOWN_HEADERS for name in later):
            defects.append(short_defect(f"dropped malformed header line {line.rstrip()!r}"))
            changed = True
            continue
        kept.append(line)
    if not changed:
        return data
    return b"".join(kept) + data[len(head) :]


MAX_LINE = 998  # RFC 5322 §2.1.1: a line of a header section is at most 998 characters


def fold_long_line(line: bytes) -> bytes:
    """A header line over 998 characters, folded at its white space (which unfolding restores).

    The email package decodes the encoded words of one physical line with a list it empties from
    the front, so a 250 KB Subject of encoded words on one line took seconds of CPU (found by the
    pipeline's property tests); folded, each line holds a few dozen words. A line with no white
    space to fold at stays as it is.
    """
    if len(line) <= MAX_LINE:
        return line
    ending = b"\r\n" if line.endswith(b"\r\n") else b"\n" if line.endswith(b"\n") else b""
    text = line[: len(line) - len(ending)]
    pieces: list[bytes] = []
    start = 0
    while len(text) - start > MAX_LINE:
        window = text[start + 1 : start + MAX_LINE]
        cut = max(window.rfind(b" "), window.rfind(b"\t"))
        if cut == -1:
            break
        cut += start + 1
        pieces.append(text[start:cut])
        start = cut  # the next piece starts with the white space: a folded line
    pieces.append(text[start:])
    return (ending or b"\n").join(pieces) + ending


def short_defect(text: str) -> str:
    """A defect description cut to a length fit for logs and the inbox row."""
    return text if len(text) <= MAX_DEFECT_LENGTH else text[: MAX_DEFECT_LENGTH - 1] + "…"


def top_header_fields(raw: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded value) of each field of the mail's own header section, top first.

    Values stay as written (no RFC 2047 decoding): a verdict a filter wrote is ASCII, and decoding
    would let a sender's encoded words turn into quotes or semicolons inside a header a trusted
    server wrote about them. Headers of attached or forwarded messages are never read.
    """
    head, _ = split_head(repair_head(strip_envelope(raw), []))
    return [
        (name.decode("ascii", "replace"), value.decode("utf-8", "replace"))
        for name, value in header_fields(head)
    ]


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID header of a raw mail, for log lines only (the pipeline parses properly)."""
    end = _HEADER_END.search(raw)
    match = _MESSAGE_ID.search(raw, 0, end.start() if end else len(raw))
    if match is None:
        return None
    return " ".join(match.group(1).decode("ascii", "replace").split()) or None
