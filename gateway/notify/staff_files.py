"""What a staff notification shows of the files of the mail it is about (SPEC §12): each screenshot as
an inline thumbnail (`cid:`), its original attached while the originals fit in
`notifications.max_attached_bytes` together, and the other attachments listed by name and size.

Decided when the notification is queued, so the mail can say which originals are thumbnails only;
the images themselves stay in the blob store and are read when the mail is sent (blob_parts.py).
Mail to customers never gets any of this: they are not sent their own files back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gateway.store import files as file_store
from gateway.store.blobs import BlobNotFoundError, BlobStore

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 320  # as gateway/mail/screenshots.py THUMBNAIL_SIZE (notify may not import it)


@dataclass(frozen=True)
class StaffFiles:
    context: dict[str, Any]  # template variables: screenshots, attachments, attach_limit
    parts: list[dict[str, str]]  # FilePart fields, JSON-ready for the outbox row's context


def staff_files(
    session: Session, blobs: BlobStore, message_db_id: int, *, limit: int, message_id: str
) -> StaffFiles | None:
    """The files of message `message_db_id` for a notification whose Message-ID is `message_id`
    (its Content-IDs are made from it, so they are unique to this mail); None when it has none."""
    shots, attachments = file_store.of_message(session, message_db_id)
    if not shots and not attachments:
        return None
    screenshots: list[dict[str, Any]] = []
    inline: list[dict[str, str]] = []
    originals: list[dict[str, str]] = []
    room = limit
    first = file_store.screenshots_before(session, shots[0]) + 1 if shots else 1
    for number, shot in enumerate(shots, start=first):
        try:
            size = blobs.size(shot.sha256, session=session)
            blobs.size(shot.thumbnail_sha256, session=session)
        except BlobNotFoundError as exc:
            # Its row is there, its bytes are not (an erase removes both): the mail goes without
            # the picture and says so (SPEC §15).
            log.warning(
                "screenshot %s of message %d unavailable: blob %s missing", shot.filename, message_db_id, exc
            )
            screenshots.append({"number": number, "name": shot.filename, "unavailable": True})
            continue
        attached = size <= room
        if attached:
            room -= size
            originals.append({"sha256": shot.sha256, "filename": _png_name(shot.filename)})
        cid = f"shot{number}.{message_id}"
        thumbnail = {"sha256": shot.thumbnail_sha256, "filename": _thumb_name(shot.filename)}
        inline.append({**thumbnail, "content_id": cid})
        screenshots.append(
            {
                "number": number,
                "name": shot.filename,
                "width": shot.width,
                "height": shot.height,
                "size": human_size(size),
                "cid": cid,
                "thumb_width": _thumb_width(shot.width, shot.height),
                "attached": attached,
                "unavailable": False,
            }
        )
    listed = [
        {"name": a.filename, "size": human_size(a.size), "content_type": a.content_type} for a in attachments
    ]
    return StaffFiles(
        context={"screenshots": screenshots, "attachments": listed, "attach_limit": human_size(limit)},
        parts=inline + originals,
    )


def human_size(size: int) -> str:
    """`512 bytes`, `14 KB`, `2.4 MB`: sizes as staff read them (1 KB = 1024 bytes)."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _thumb_width(width: int, height: int) -> int:
    """The thumbnail's width (screenshots.THUMBNAIL_SIZE bounds it), for clients that need it said."""
    return max(1, min(width, round(width * min(THUMBNAIL_SIDE / width, THUMBNAIL_SIDE / height))))


def _stem(filename: str) -> str:
    return (filename.rsplit(".", 1)[0] if "." in filename else filename) or "screenshot"


def _png_name(filename: str) -> str:
    """The name an original goes out under: it was normalised to PNG, whatever it was sent as."""
    return filename if filename.lower().endswith(".png") else f"{_stem(filename)}.png"


def _thumb_name(filename: str) -> str:
    return f"{_stem(filename)}-thumbnail.png"
