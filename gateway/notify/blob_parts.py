"""Fills the image parts of a notification from the blob store just before it is sent.

A staff notification about a mail with screenshots is queued with placeholder parts that name their
blob by SHA-256 (`message.BLOB_HEADER`), not with the images: one outbox row per staff recipient
would otherwise hold up to `notifications.max_attached_bytes` each, and `outbox list`, claims and
retries would carry those bytes around. The sender reads the images here, once per delivery attempt.

Only MIME part headers are looked at, never bodies, so text a customer wrote cannot ask for a blob.
A blob that cannot be read never stops the mail (SPEC §15): one erased for a data-protection
request since the mail was queued is left out quietly (the erase removed its name everywhere);
one that is missing or whose bytes no longer match their SHA-256 (a damaged disk, a bad restore) is
left out too, and the mail says so, in its text and its HTML, naming the file, so staff know a
picture existed and ask for it again. A WARNING names the outbox row, the file and the blob.

The plain case — the very shape `message.build_message` writes, every blob read and whole — is
spliced (`splice_blob_parts`): the parts are found by the boundaries the top Content-Type and the
nested multiparts' Content-Types name, only the part headers are read, and each placeholder is
replaced by its headers without `X-Ticketgate-Blob`, `Content-Transfer-Encoding: base64` and the
blob in base64; every other byte stays where it is. Parsing the whole mail and writing it again
(`message_from_bytes`, `as_bytes`: the parser and the generator each compile a regex per multipart)
cost ~4.5 ms per mail with files. tests/unit/test_blob_parts_splice.py holds the splice to the bytes
the library path (`library_fill`) gives on generated notifications. Anything else — a blob missing
or damaged, a SHA-256 that is not one, a shape the splice does not recognise — goes through the
library path unchanged (its blobs read again), so what SPEC §15 says of such a mail stays as it is.
"""

from __future__ import annotations

import binascii
import html
import logging
import re
from email import charset as email_charset
from email import message_from_bytes
from email.encoders import encode_base64
from email.message import Message

from gateway.notify.message import BLOB_HEADER, WIRE, fold_header
from gateway.store.blobs import BlobCorruptError, BlobNotFoundError, BlobStore, check_sha256

log = logging.getLogger(__name__)

_MARK = BLOB_HEADER.encode("ascii") + b":"
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP
UNAVAILABLE_NOTE = "ticketgate could not attach {name}: the stored copy is {why}."


def has_blob_parts(raw: bytes) -> bool:
    """Whether `raw` may carry placeholders (cheap: most notifications have none)."""
    return _MARK in raw


def fill_blob_parts(raw: bytes, blobs: BlobStore, *, outbox_id: int) -> bytes:
    """`raw` with every placeholder part's bytes read from `blobs`; `raw` itself when it has none."""
    if not has_blob_parts(raw):
        return raw
    spliced = splice_blob_parts(raw, blobs)
    if spliced is not None:
        return spliced
    return library_fill(raw, blobs, outbox_id=outbox_id)


def library_fill(raw: bytes, blobs: BlobStore, *, outbox_id: int) -> bytes:
    """`fill_blob_parts` through the email package: parse, fill or leave out each placeholder, say
    which files were left out, write the body again. Every case the splice does not take, and the
    reference its tests compare it with."""
    msg = message_from_bytes(raw)
    if not msg.is_multipart():
        return raw
    unavailable: list[tuple[str, str]] = []  # (file name, why) of each file left out
    if not _fill(msg, blobs, outbox_id, unavailable):
        return raw
    if unavailable:
        _say_unavailable(msg, unavailable)
    # The top-level headers go out exactly as they were built (parsing and writing them again
    # would refold a long Subject); only the body is written anew.
    head, _, _ = raw.partition(b"\r\n\r\n")
    _, _, body = msg.as_bytes(policy=WIRE).partition(b"\r\n\r\n")
    return head + b"\r\n\r\n" + body


def splice_blob_parts(raw: bytes, blobs: BlobStore) -> bytes | None:
    """`raw` with its placeholders filled, the bytes `library_fill` gives, when `raw` is the plain
    case: multipart/mixed [multipart/related [multipart/alternative [text, text], thumbnails],
    originals] as `build_message` writes it, at least one placeholder, and every blob read whole.
    None otherwise (nothing logged: the library path reads the blobs again and says what it finds).

    Only part headers are read: a body is never looked into but to count its boundary's
    delimiters, so a customer's text cannot make a part (the boundaries were chosen after the texts
    were known, to be in none of them) nor ask for a blob."""
    if not raw.isascii() or not raw.count(b"\r") == raw.count(b"\n") == raw.count(b"\r\n"):
        return None  # not the CRLF-only ASCII we write: the generator would change its line ends
    top = _MIXED_TYPE.match(raw)
    head_end = raw.find(b"\r\n\r\n") + 2
    if top is None or head_end < 2 or not _HEAD.fullmatch(raw, 0, head_end):
        return None  # the top headers are kept as they are, but must end where the parser ends them
    mixed = _parts(raw, head_end + 2, len(raw), top.group(1))
    if not mixed:
        return None
    related_span, *originals = mixed
    related = _multipart(raw, related_span, _RELATED_HEAD)
    if not related:
        return None
    alternative_span, *thumbnails = related
    texts = _multipart(raw, alternative_span, _ALTERNATIVE_HEAD)
    if texts is None or len(texts) != 2 or not all(_TEXT_HEAD.match(raw, *span) for span in texts):
        return None
    placeholders = thumbnails + originals
    if not placeholders:
        return None
    out: list[bytes] = []
    done = 0
    for start, end in placeholders:
        filled = _filled(raw[start:end], blobs)
        if filled is None:
            return None
        out += (raw[done:start], filled)
        done = end
    out.append(raw[done:])
    return b"".join(out)


# The shapes `build_message` writes (gateway/notify/message.py): the boundaries it makes, the
# multiparts' headers as compat32 folds them, a text part's headers, a placeholder's headers.
_BOUNDARY = rb"(={15}\d{19}==)"
_MIXED_TYPE = re.compile(rb'Content-Type: multipart/mixed; boundary="' + _BOUNDARY + rb'"\r\n')
# Header lines and their continuations, all the way to the blank line.
_HEAD = re.compile(rb"(?:[!-9;-~]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)+")
_RELATED_HEAD = re.compile(
    rb'Content-Type: multipart/related; type="multipart/alternative";\r\n boundary="'
    + _BOUNDARY
    + rb'"\r\nMIME-Version: 1\.0\r\n\r\n'
)
_ALTERNATIVE_HEAD = re.compile(
    rb'Content-Type: multipart/alternative;\r\n boundary="' + _BOUNDARY + rb'"\r\nMIME-Version: 1\.0\r\n\r\n'
)
_TEXT_HEAD = re.compile(
    rb'Content-Type: text/(?:plain|html); charset="(?:us-ascii|utf-8)"\r\nMIME-Version: 1\.0\r\n'
    rb"Content-Transfer-Encoding: (?:7bit|quoted-printable)\r\n\r\n"
)
_PLACEHOLDER = re.compile(
    rb"Content-Type: image/png\r\nMIME-Version: 1\.0\r\n"
    + _MARK
    + rb" \r\n ([0-9a-f]{64})\r\n"
    + rb"((?:Content-ID:[^\r\n]*\r\n(?: [^\r\n]*\r\n)*)?"
    + rb"Content-Disposition:[^\r\n]*\r\n(?: [^\r\n]*\r\n)*)\r\n"
)
# One header and its continuation lines (they start with a space where compat32 folds).
_HEADER_LINE = re.compile(rb"([A-Za-z-]+):([^\r\n]*(?:\r\n [^\r\n]*)*)\r\n")


def _parts(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]] | None:
    """The spans of the parts of the multipart body `raw[start:end]` delimited by `boundary`, each
    without the line break before its next delimiter; None unless the body is exactly its parts
    between the delimiters (no preamble, no epilogue, the boundary nowhere else)."""
    dash = b"--" + boundary
    if not raw.startswith(dash + b"\r\n", start) or not raw.endswith(b"\r\n" + dash + b"--\r\n", start, end):
        return None
    delimiter = b"\r\n" + dash + b"\r\n"
    last = end - len(dash) - 6
    spans: list[tuple[int, int]] = []
    at = start + len(dash) + 2
    while (next_at := raw.find(delimiter, at, last)) >= 0:
        spans.append((at, next_at))
        at = next_at + len(delimiter)
    if last < at:
        return None
    spans.append((at, last))
    return spans if raw.count(dash, start, end) == len(spans) + 1 else None


def _multipart(raw: bytes, span: tuple[int, int], head: re.Pattern[bytes]) -> list[tuple[int, int]] | None:
    """The spans of the parts of the nested multipart at `span`, when its headers are `head`."""
    match = head.match(raw, *span)
    return _parts(raw, match.end(), span[1], match.group(1)) if match else None


def _filled(part: bytes, blobs: BlobStore) -> bytes | None:
    """A placeholder part (its headers and blank line) as `library_fill` writes it filled: its other
    headers folded again as the generator folds parsed headers, `Content-Transfer-Encoding: base64`,
    a blank line and the blob in base64 as `encode_base64` puts it (`_base64_lines`); None when it
    is not a placeholder or its blob cannot be read."""
    match = _PLACEHOLDER.fullmatch(part)
    if match is None:
        return None
    try:
        data = blobs.get(match.group(1).decode("ascii"))
    except (BlobNotFoundError, BlobCorruptError, ValueError):
        return None
    # The value as the compat32 parser reads it (white space after the colon dropped, the folds
    # kept), folded again as the generator folds it.
    headers = [
        fold_header(name.decode("ascii"), value.decode("ascii").lstrip(" \t"))
        for name, value in _HEADER_LINE.findall(match.group(2))
    ]
    return (
        b"Content-Type: image/png\r\nMIME-Version: 1.0\r\n"
        + "".join(headers).encode("ascii")
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + _base64_lines(data)
    )


def _base64_lines(data: bytes) -> bytes:
    """`base64.encodebytes(data)` with CRLF line ends: lines of 76 characters (57 bytes each, so
    no padding but on the last), each ending in a line break; nothing for no bytes.
    `encodebytes` calls `b2a_base64` once per line: here it is called once, and the lines cut."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    return b"\r\n".join([encoded[at : at + 76] for at in range(0, len(encoded), 76)]) + b"\r\n"


def _fill(container: Message, blobs: BlobStore, outbox_id: int, unavailable: list[tuple[str, str]]) -> bool:
    """Fill the placeholders under `container` (in place); True when there were any."""
    found = False
    kept: list[Message] = []
    for part in container.get_payload():
        if part.is_multipart():
            found = _fill(part, blobs, outbox_id, unavailable) or found
            kept.append(part)
            continue
        sha256 = part.get(BLOB_HEADER)
        if sha256 is None:
            kept.append(part)
            continue
        found = True
        del part[BLOB_HEADER]
        name = str(part.get_filename() or "a screenshot")
        try:
            data = blobs.get(check_sha256(str(sha256).strip()))
        except BlobNotFoundError:
            log.warning("outbox %d: %s left out: blob %s is not in the blob store", outbox_id, name, sha256)
            unavailable.append((name, "missing"))
            continue
        except BlobCorruptError as exc:
            log.warning("outbox %d: %s left out: %s", outbox_id, name, exc)
            unavailable.append((name, "damaged (it no longer matches its SHA-256)"))
            continue
        except ValueError as exc:
            log.warning("outbox %d: image %s left out: %s", outbox_id, sha256, exc)
            continue
        part.set_payload(data)
        encode_base64(part)
        kept.append(part)
    if found:
        container.set_payload(kept)
    return found


def _say_unavailable(msg: Message, unavailable: list[tuple[str, str]]) -> None:
    """Append one line per file left out to the first text/plain and text/html parts."""
    notes = [UNAVAILABLE_NOTE.format(name=name, why=why) for name, why in unavailable]
    done: set[str] = set()
    for part in msg.walk():
        subtype = part.get_content_subtype()
        if part.get_content_maintype() != "text" or subtype in done or part.get_filename():
            continue
        if subtype not in ("plain", "html"):
            continue
        done.add(subtype)
        raw = part.get_payload(decode=True)
        assert isinstance(raw, bytes)
        text = raw.decode(part.get_content_charset() or "utf-8", errors="replace")
        if subtype == "plain":
            text = text.rstrip("\r\n") + "\n\n" + "\n".join(f"[{note}]" for note in notes) + "\n"
        else:
            paragraphs = "".join(f"<p><em>{html.escape(note)}</em></p>" for note in notes)
            at = text.lower().rfind("</body>")
            text = text[:at] + paragraphs + text[at:] if at >= 0 else text + paragraphs
        del part["Content-Transfer-Encoding"]
        part.set_payload(text, _UTF8_QP)
