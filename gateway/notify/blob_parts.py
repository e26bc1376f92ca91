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
"""

from __future__ import annotations

import html
import logging
from email import charset as email_charset
from email import message_from_bytes
from email.encoders import encode_base64
from email.message import Message

from gateway.notify.message import BLOB_HEADER, WIRE
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
