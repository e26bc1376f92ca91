"""Fills the image parts of a notification from the blob store just before it is sent.

A staff notification about a mail with screenshots is queued with placeholder parts that name their
blob by SHA-256 (`message.BLOB_HEADER`), not with the images: one outbox row per staff recipient
would otherwise hold up to `notifications.max_attached_bytes` each, and `outbox list`, claims and
retries would carry those bytes around. The sender reads the images here, once per delivery attempt.

Only MIME part headers are looked at, never bodies, so text a customer wrote cannot ask for a blob.
A blob that is gone (erased for a data-protection request since the mail was queued) leaves its
part out: the mail still goes, without the picture.
"""

from __future__ import annotations

import logging
from email import message_from_bytes
from email.encoders import encode_base64
from email.message import Message

from gateway.notify.message import BLOB_HEADER, WIRE
from gateway.store.blobs import BlobNotFoundError, BlobStore, check_sha256

log = logging.getLogger(__name__)

_MARK = BLOB_HEADER.encode("ascii") + b":"


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
    if not _fill(msg, blobs, outbox_id):
        return raw
    # The top-level headers go out exactly as they were built (parsing and writing them again
    # would refold a long Subject); only the body is written anew.
    head, _, _ = raw.partition(b"\r\n\r\n")
    _, _, body = msg.as_bytes(policy=WIRE).partition(b"\r\n\r\n")
    return head + b"\r\n\r\n" + body


def _fill(container: Message, blobs: BlobStore, outbox_id: int) -> bool:
    """Fill the placeholders under `container` (in place); True when there were any."""
    found = False
    kept: list[Message] = []
    for part in container.get_payload():
        if part.is_multipart():
            found = _fill(part, blobs, outbox_id) or found
            kept.append(part)
            continue
        sha256 = part.get(BLOB_HEADER)
        if sha256 is None:
            kept.append(part)
            continue
        found = True
        del part[BLOB_HEADER]
        try:
            data = blobs.get(check_sha256(str(sha256).strip()))
        except (BlobNotFoundError, ValueError) as exc:
            log.warning("outbox %d: image %s left out: %s", outbox_id, sha256, type(exc).__name__)
            continue
        part.set_payload(data)
        encode_base64(part)
        kept.append(part)
    if found:
        container.set_payload(kept)
    return found
