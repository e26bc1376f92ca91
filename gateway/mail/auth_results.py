"""Authentication-Results header fields (RFC 8601) read by the RFC's grammar, for SPEC §11.

A trusted server's header often repeats attacker-chosen text: the envelope sender goes into
`smtp.mailfrom`, the From domain into `header.from`, in quoted strings and comments. Splitting on `;`
reads `smtp.mailfrom="x;dmarc=pass y"@evil.example` as a `dmarc=pass`. So the value is tokenized
first: a quoted string (with its `\\"` escapes) and a comment (nested, with escapes) are single
tokens, and only the `;` and `=` outside them give the header its structure. Anything the grammar
does not expect (an unterminated quoted string or comment, a stray `)`, a control character, a
result without `method=result`) makes the whole header unreadable: a misread header must never
become a pass, so it vouches for nothing.

Why not the `authres` package: its parser swallows every error inside a result's properties and
carries on from wherever it stopped (a bare `except:`; its `strict` switch cannot be set through
`parse`), which turns `smtp.mailfrom="a"b;dmarc=pass header.x="@evil.example; dmarc=fail ...`
into a `dmarc=pass` without `header.from`, and it rebuilds the rest of the string for every token
(quadratic: about 1.5 s for a 100 KB header). `authheaders` has no parser of its own: it builds
headers and reads them with `authres`. docs/security/index.md has the measurements.

The values are taken from the raw header bytes, not the decoded header: decoding RFC 2047 words
(as the parser does for display) would turn `"=?us-ascii?q?=22;dmarc=3Dpass;x=3D=22?="` inside a
quoted string into quotes and a `dmarc=pass` outside it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

HEADER = "Authentication-Results"


class AuthResultsSyntaxError(ValueError):
    """The header does not follow RFC 8601; the message says where."""


@dataclass(frozen=True)
class AuthResult:
    """One `method=result` of a header, with its properties (`header.d` -> `example.com`, first
    one wins, values lower-cased) and the text of the comments written with it."""

    method: str  # "dkim", "dmarc", "spf" ... (a method version such as "/1" is dropped)
    result: str  # "pass", "fail" ...
    properties: dict[str, str]
    comments: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class AuthResultsHeader:
    authserv_id: str  # lower-case
    results: tuple[AuthResult, ...]


@dataclass(frozen=True)
class TrustedResults:
    """What the topmost header of a trusted server says, and what was passed over.

    `authserv_id` is None when no header names a trusted server. When it is set but `header` is
    None, that header was unreadable (`problem` says why) and counts as saying nothing: the headers
    below it are not consulted, since anyone can write those.
    """

    authserv_id: str | None = None
    header: AuthResultsHeader | None = None
    problem: str = ""
    ignored: tuple[str, ...] = field(default=())  # authserv-ids of lower headers claiming a trusted id


# --- tokens -----------------------------------------------------------------------------------------

_WORD = re.compile(r'[^\s()";=\\\x00-\x1f\x7f]+')  # "/" too: base64 in header.b, "dkim/1"
_SPACE = re.compile(r"\s+")
_QTEXT = re.compile(r'[^"\\\x00-\x08\x0a-\x1f\x7f]+')  # tab and non-ASCII allowed, as RFC 6532
_CTEXT = re.compile(r"[^()\\\x00-\x08\x0a-\x1f\x7f]+")
_SPECIALS = ";="


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "quoted", ";" or "="
    text: str


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The content of the quoted string opening at `pos` and the position after it."""
    pos += 1
    parts: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(parts), pos + 1
        if char == "\\":
            if pos + 1 >= len(text):
                break
            parts.append(text[pos + 1])
            pos += 2
            continue
        run = _QTEXT.match(text, pos)
        if run is None:
            raise AuthResultsSyntaxError(f"control character in a quoted string at {pos}")
        parts.append(run.group())
        pos = run.end()
    raise AuthResultsSyntaxError("unterminated quoted string")


def _comment(text: str, pos: int) -> tuple[str, int]:
    """The text of the (possibly nested) comment opening at `pos` and the position after it."""
    depth = 0
    parts: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "(":
            depth += 1
            if depth > 1:
                parts.append(char)
            pos += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return "".join(parts), pos + 1
            parts.append(char)
            pos += 1
        elif char == "\\":
            if pos + 1 >= len(text):
                break
            parts.append(text[pos + 1])
            pos += 2
        else:
            run = _CTEXT.match(text, pos)
            if run is None:
                raise AuthResultsSyntaxError(f"control character in a comment at {pos}")
            parts.append(run.group())
            pos = run.end()
    raise AuthResultsSyntaxError("unterminated comment")


def _tokens(text: str) -> tuple[list[_Token], list[tuple[int, str]]]:
    """The tokens of a header value, and its comments as (index of the next token, text)."""
    tokens: list[_Token] = []
    comments: list[tuple[int, str]] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        elif char == "(":
            comment, pos = _comment(text, pos)
            comments.append((len(tokens), comment))
        elif char == '"':
            content, pos = _quoted(text, pos)
            domain = _WORD.match(text, pos) if text.startswith("@", pos) else None
            if domain is not None:  # a quoted local part and its domain: one value
                escaped = content.replace("\\", "\\\\").replace('"', '\\"')
                tokens.append(_Token("word", f'"{escaped}"{domain.group()}'))
                pos = domain.end()
            else:
                tokens.append(_Token("quoted", content))
        elif char in _SPECIALS:
            tokens.append(_Token(char, char))
            pos += 1
        elif char == ")":
            raise AuthResultsSyntaxError(f"')' without '(' at {pos}")
        else:
            word = _WORD.match(text, pos)
            if word is None:
                raise AuthResultsSyntaxError(f"unexpected {char!r} at {pos}")
            tokens.append(_Token("word", word.group()))
            pos = word.end()
    return tokens, comments


# --- grammar ----------------------------------------------------------------------------------------


def _unfold(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


def _segments(tokens: list[_Token]) -> list[tuple[int, list[_Token]]]:
    """Tokens split at each `;`, with the index of each segment's first token."""
    segments: list[tuple[int, list[_Token]]] = [(0, [])]
    for index, token in enumerate(tokens):
        if token.kind == ";":
            segments.append((index + 1, []))
        else:
            segments[-1][1].append(token)
    return segments


def _result(tokens: list[_Token], comments: tuple[str, ...]) -> AuthResult:
    """One resinfo: method [/version] = result, then reason= and ptype.property= pairs."""
    words = [(t.kind, t.text) for t in tokens]
    if len(words) < 3 or words[0][0] != "word" or words[1][0] != "=" or words[2][0] != "word":
        raise AuthResultsSyntaxError(f"expected method=result, got {_show(tokens)}")
    method, slash, version = words[0][1].lower().partition("/")
    if slash and not version.isdigit():
        raise AuthResultsSyntaxError(f"bad method version in {_show(tokens)}")
    result = words[2][1].lower()
    properties: dict[str, str] = {}
    reason = ""
    rest = words[3:]
    if len(rest) % 3:
        raise AuthResultsSyntaxError(f"expected name=value pairs after {method}={result}")
    for start in range(0, len(rest), 3):
        (key_kind, key), (eq_kind, _), (value_kind, value) = rest[start : start + 3]
        if key_kind != "word" or eq_kind != "=" or value_kind not in ("word", "quoted"):
            raise AuthResultsSyntaxError(f"expected name=value after {method}={result}, got {key}")
        if key.lower() == "reason":
            reason = value
        else:
            properties.setdefault(key.lower(), value.lower())
    return AuthResult(method, result, properties, comments, reason)


def _show(tokens: list[_Token]) -> str:
    text = " ".join(t.text for t in tokens)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def parse_header(value: str) -> AuthResultsHeader:
    """One Authentication-Results value; raises AuthResultsSyntaxError if it is not RFC 8601."""
    tokens, comments = _tokens(_unfold(value))
    segments = _segments(tokens)
    _, head = segments[0]
    if not head or head[0].kind not in ("word", "quoted"):
        raise AuthResultsSyntaxError("no authserv-id")
    if len(head) > 2 or (len(head) == 2 and (head[1].kind != "word" or not head[1].text.isdigit())):
        raise AuthResultsSyntaxError(f"unexpected text after the authserv-id: {_show(head[1:])}")
    if len(head) == 2 and head[1].text != "1":
        raise AuthResultsSyntaxError(f"unknown version {head[1].text} (RFC 8601 says: ignore the header)")
    starts = [start for start, _ in segments]
    said: list[list[str]] = [[] for _ in segments]
    for index, text in comments:  # each comment goes with the segment of the token after it
        said[bisect_right(starts, index) - 1].append(text)
    results: list[AuthResult] = []
    for number, (_, segment) in enumerate(segments[1:], start=1):
        if not segment:
            continue  # "a;;b" or a trailing ";": written by some servers, meaning nothing
        if len(segment) == 1 and segment[0].kind == "word" and segment[0].text.lower() == "none":
            continue
        results.append(_result(segment, tuple(said[number])))
    return AuthResultsHeader(head[0].text.lower(), tuple(results))


def authserv_id_of(value: str) -> str | None:
    """The authserv-id a header claims, read even when the rest of it is unreadable."""
    text = _unfold(value)
    pos = 0
    try:
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
            elif text[pos] == "(":
                _, pos = _comment(text, pos)
            elif text[pos] == '"':
                return _quoted(text, pos)[0].lower()
            else:
                word = _WORD.match(text, pos)
                return word.group().lower() if word is not None else None
    except AuthResultsSyntaxError:
        return None
    return None


# --- which header counts ----------------------------------------------------------------------------


def raw_header_values(raw: bytes, name: str = HEADER) -> tuple[str, ...]:
    """The values of the mail's own `name` headers as written (no RFC 2047 decoding), topmost first."""
    try:
        message = BytesHeaderParser(policy=compat32).parsebytes(raw)
    except Exception:  # the email package on hostile input: then no header vouches for anything
        return ()
    wanted = name.lower()
    # raw_items: the values as stored, 8-bit bytes as surrogates, not Header objects made of them.
    return tuple(str(value) for key, value in message.raw_items() if key.strip().lower() == wanted)


def trusted_results(values: Sequence[str], trusted: Iterable[str]) -> TrustedResults:
    """The topmost header naming a trusted server (SPEC §11), and the lower ones it overrides.

    Each server that handles the mail adds its header at the top, so the topmost trusted one is
    the one our own server wrote; one further down came with the mail, from anyone.
    """
    trusted_ids = {name.strip().lower() for name in trusted}
    chosen: TrustedResults | None = None
    ignored: list[str] = []
    for value in values:
        claimed = authserv_id_of(value)
        if claimed is None or claimed not in trusted_ids:
            continue
        if chosen is not None:
            ignored.append(claimed)
            continue
        try:
            chosen = TrustedResults(claimed, parse_header(value))
        except AuthResultsSyntaxError as exc:
            chosen = TrustedResults(claimed, None, str(exc))
    if chosen is None:
        return TrustedResults()
    return TrustedResults(chosen.authserv_id, chosen.header, chosen.problem, tuple(ignored))
