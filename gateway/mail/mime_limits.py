"""Header bytes, MIME parts and MIME depth, checked on the raw bytes before a mail is parsed.

A mail with a megabyte of headers, ten thousand parts or parts nested hundreds deep costs the
parsers time and memory out of all proportion (the email package's feed parser descends one
generator per level, so very deep nesting ends in RecursionError), and no customer writes one.
SPEC §11 quarantines such mail with the reason, whole, before any stage has acted on it.

Why not parse and walk the tree: the parse is the cost being guarded against. This scan only
finds the header sections and the boundary lines: it reads each part's header with the email
package (so folding, quoting and RFC 2231 boundaries are understood as the parser will), skips
the bodies with one regular-expression search per line that starts with `--`, and stops at the
first limit crossed. It keeps a list, not a call stack, per level, so depth costs nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Protocol

from gateway.errors import ProcessingError
from gateway.mail.rawmail import split_head, strip_envelope
from gateway.mail.rfc2231_repair import repair_mixed_sections

# A line that may be a boundary delimiter: "--" then the rest of the line (RFC 2046 §5.1.1).
_DASH_LINE = re.compile(rb"^--([^\r\n]*)", re.MULTILINE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# The email package reads the body of every message/* part as a whole message (headers, then a
# body that may nest again), except message/delivery-status, whose blocks are fields only.
_NOT_EMBEDDED = "message/delivery-status"
_HEADER_PARSER = BytesHeaderParser(policy=compat32)
# A field's first line as the email package's feed parser takes it (a name of at least one printable
# character but the colon, then the colon); its continuation lines start with a space or a tab.
_FIELD_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


class MailOverLimit(ProcessingError):
    """The mail crosses one of the `limits.max_header_bytes / max_mime_parts / max_mime_depth`."""


class MimeLimits(Protocol):
    """The three limits; `gateway.config.LimitSettings` fits."""

    @property
    def max_header_bytes(self) -> int: ...
    @property
    def max_mime_parts(self) -> int: ...
    @property
    def max_mime_depth(self) -> int: ...


def check_mime_limits(raw: bytes, limits: MimeLimits) -> None:
    """Raise MailOverLimit naming the limit (its config key) and the mail's figure; else nothing."""
    # Read as parse_mail will read it: a parameter given whole and in sections reduced to its sections.
    problem = _Scan(repair_mixed_sections(strip_envelope(raw), []), limits).run()
    if problem is not None:
        raise MailOverLimit(problem)


@dataclass
class _Open:
    """A multipart whose closing delimiter has not been seen yet."""

    boundary: bytes
    level: int  # the multipart's own level; its parts are one deeper


class _Scan:
    def __init__(self, data: bytes, limits: MimeLimits) -> None:
        self.data = data
        self.limits = limits
        self.parts = 0
        self.open: list[_Open] = []

    def run(self) -> str | None:
        head, _body = split_head(self.data)
        if len(head) > self.limits.max_header_bytes:
            return (
                f"over limits.max_header_bytes: the header section is {len(head)} bytes "
                f"(limit {self.limits.max_header_bytes})"
            )
        problem, pos = self._entity(0, level=1, counted=False)
        while problem is None and self.open:
            match = _DASH_LINE.search(self.data, pos)
            if match is None:
                break  # unterminated multiparts: the parser copes, and nothing more can nest
            pos = match.end()
            problem, pos = self._delimiter(match.group(1).rstrip(b" \t\r"), pos)
        return problem

    def _delimiter(self, line: bytes, pos: int) -> tuple[str | None, int]:
        """A line after its `--`: a boundary of an open multipart (innermost first), or text."""
        for index in range(len(self.open) - 1, -1, -1):
            boundary = self.open[index].boundary
            if line == boundary:
                del self.open[index + 1 :]  # a delimiter of an outer part closes the inner ones
                return self._entity(self._next_line(pos), level=self.open[index].level + 1)
            if line == boundary + b"--":
                del self.open[index:]
                return None, pos
        return None, pos

    def _entity(self, pos: int, *, level: int, counted: bool = True) -> tuple[str | None, int]:
        """The entity whose header section starts at `pos`, and any messages embedded in it."""
        while True:
            if counted:
                self.parts += 1
                if self.parts > self.limits.max_mime_parts:
                    return (
                        f"over limits.max_mime_parts: more than {self.limits.max_mime_parts} MIME parts",
                        pos,
                    )
            if level > self.limits.max_mime_depth:
                return (
                    f"over limits.max_mime_depth: MIME parts nested {level} deep "
                    f"(limit {self.limits.max_mime_depth})",
                    pos,
                )
            head, pos = self._header_section(pos)
            if counted and len(head) > self.limits.max_header_bytes:
                return (
                    f"over limits.max_header_bytes: a MIME part's header section is {len(head)} bytes "
                    f"(limit {self.limits.max_header_bytes})",
                    pos,
                )
            content_type, boundary = _content_type(head)
            if content_type.startswith("multipart/") and boundary:
                self.open.append(_Open(boundary, level))
                return None, pos
            if not content_type.startswith("message/") or content_type == _NOT_EMBEDDED:
                return None, pos
            level += 1  # the body is a whole message: its header section starts right here
            counted = True

    def _header_section(self, pos: int) -> tuple[bytes, int]:
        """The header section starting at `pos` and where its body starts."""
        if self.data.startswith((b"\r\n", b"\n"), pos):
            return b"", self._next_line(pos)  # no headers: the body starts after this blank line
        match = _BLANK_LINE.search(self.data, pos)
        if match is None:
            return self.data[pos:], len(self.data)
        return self.data[pos : match.start() + 1], match.end()

    def _next_line(self, pos: int) -> int:
        end = self.data.find(b"\n", pos)
        return len(self.data) if end < 0 else end + 1


def _content_type(head: bytes) -> tuple[str, bytes | None]:
    """The content type and multipart boundary as the email package will read them."""
    if b"content-type" not in head.lower():
        return "text/plain", None  # the default (RFC 2045), without the cost of a parse
    fields = _content_type_fields(head)
    if fields is not None:
        read = _simple_content_type(fields)
        if read is not None:
            return read
    message = _HEADER_PARSER.parsebytes((head if fields is None else b"".join(fields)) + b"\n")
    boundary = message.get_boundary()
    if boundary is None:
        return message.get_content_type(), None
    try:
        return message.get_content_type(), boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # decoded from RFC 2231 into characters beyond ASCII
        return message.get_content_type(), boundary.encode("utf-8", "surrogateescape")


def _content_type_fields(head: bytes) -> list[bytes] | None:
    """The Content-Type fields of a plain header section, each with its continuation lines, or None.

    The email package reads the content type and the boundary from the first Content-Type field;
    given that field alone it reads the same, without parsing every other header of the section
    (parsing the whole section was ~2 % of processing a mail). Plain means what the feed parser
    takes field by field to the end: every line opens a field or continues one, split where the
    parser splits (CR, LF, CRLF). Anything else (a blank line, a line without a colon, an
    mbox "From " line, a first line that is a continuation) gives None and the caller parses the
    section whole. tests/unit/test_mime_limits_fields.py compares the two ways.
    """
    fields: list[bytes] = []
    keep = False
    for index, line in enumerate(head.splitlines(keepends=True)):
        if line[:1] in (b" ", b"\t") and index > 0:
            if keep:
                fields[-1] += line
        elif _FIELD_START.match(line):
            keep = line[:13].lower() == b"content-type:"
            if keep:
                fields.append(line)
        else:
            return None
    return fields


def _simple_content_type(fields: list[bytes]) -> tuple[str, None] | None:
    """The content type the email package reads from these Content-Type fields, when no parse is
    needed for it: no such field (text/plain), or a first field in ASCII that names no boundary
    and is not multipart (which needs its boundary). None: ask the parser.

    As compat32 reads it: the value after the colon without its leading blanks, continuation lines
    as they are and the final line break removed; the type is what comes before the first `;`,
    stripped and lowered, and text/plain unless it holds exactly one `/`. Even one header parsed
    by the email package cost ~85 µs, most of the scan of a plain mail.
    """
    if not fields:
        return "text/plain", None
    first = fields[0]
    if not first.isascii() or b"boundary" in first.lower():
        return None
    value = first.decode("ascii").split(":", 1)[1].lstrip(" \t").rstrip("\r\n")
    content_type = value.partition(";")[0].strip().lower()
    if content_type.count("/") != 1:
        return "text/plain", None
    return None if content_type.startswith("multipart/") else (content_type, None)
