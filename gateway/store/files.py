"""Keeps a message's screenshots and attachments: bytes in the blob store, rows in the database.

Blobs are written before the transaction commits (the database store writes them in it); a
rollback leaves at most an unreferenced file, which is harmless (content-addressed, written again
by the retry) — never a row without its bytes.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from gateway.domain import EventKind, SortedAttachments
from gateway.store.blobs import BlobStore
from gateway.store.direct import Direct, run, run_many
from gateway.store.models import Attachment, RejectedAttachment, Screenshot
from gateway.store.tickets import add_event


class StoredScreenshot(NamedTuple):
    """A screenshot row as a notification reads it."""

    id: int
    ticket_id: int
    sha256: str
    thumbnail_sha256: str
    width: int
    height: int
    filename: str


class StoredAttachment(NamedTuple):
    """An attachment row as a notification reads it."""

    filename: str
    size: int
    content_type: str


# Run on the DB-API cursor (gateway/store/direct.py): a staff notification about a mail with files
# reads them back in the transaction that wrote them; through the ORM these three statements and
# their objects cost more than writing the notification.
_SHOTS_OF_MESSAGE = Direct(
    select(
        Screenshot.id, Screenshot.ticket_id, Screenshot.sha256, Screenshot.thumbnail_sha256,
        Screenshot.width, Screenshot.height, Screenshot.filename,
    )
    .where(Screenshot.message_db_id == bindparam("message_db_id"))
    .order_by(Screenshot.id)
)  # fmt: skip
_ATTACHMENTS_OF_MESSAGE = Direct(
    select(Attachment.filename, Attachment.size, Attachment.content_type)
    .where(Attachment.message_db_id == bindparam("message_db_id"))
    .order_by(Attachment.id)
)
_SHOTS_BEFORE = Direct(
    select(func.count()).where(
        Screenshot.ticket_id == bindparam("ticket_id"), Screenshot.id < bindparam("screenshot_id")
    )
)
_INSERT_SCREENSHOT = Direct(insert(Screenshot.__table__))
_INSERT_ATTACHMENT = Direct(insert(Attachment.__table__))


def of_message(session: Session, message_db_id: int) -> tuple[list[StoredScreenshot], list[StoredAttachment]]:
    """A message's screenshots and other attachments, each in the order the mail carried them."""
    params = {"message_db_id": message_db_id}
    shots = [StoredScreenshot(*row) for row in run(session, _SHOTS_OF_MESSAGE, params).rows]
    attachments = [StoredAttachment(*row) for row in run(session, _ATTACHMENTS_OF_MESSAGE, params).rows]
    return shots, attachments


def screenshots_before(session: Session, screenshot: StoredScreenshot) -> int:
    """How many of its ticket's screenshots came before `screenshot` (`tickets screenshot REF N`
    counts from 1 over the whole ticket)."""
    params = {"ticket_id": screenshot.ticket_id, "screenshot_id": screenshot.id}
    return int(run(session, _SHOTS_BEFORE, params).scalar() or 0)


def add_files(
    session: Session,
    blobs: BlobStore,
    *,
    ticket_id: int,
    message_db_id: int,
    files: SortedAttachments,
    inbox_id: int,
) -> None:
    # Written on the cursor, not as ORM objects: nothing in the transaction reads them back as
    # objects, and a staff notification reads them with `of_message` (no flush needed first).
    screenshots = []
    for shot in files.screenshots:
        sha256 = blobs.put(shot.png, session=session)
        # A picture within the thumbnail's bounds is its own thumbnail (mail/screenshots.py): one blob.
        screenshots.append(
            {
                "ticket_id": ticket_id,
                "message_db_id": message_db_id,
                "sha256": sha256,
                "thumbnail_sha256": (
                    sha256 if shot.thumbnail == shot.png else blobs.put(shot.thumbnail, session=session)
                ),
                "width": shot.width,
                "height": shot.height,
                "filename": shot.filename[:255],
                "content_type": "image/png",
            }
        )
    run_many(session, _INSERT_SCREENSHOT, screenshots)
    run_many(
        session,
        _INSERT_ATTACHMENT,
        [
            {
                "ticket_id": ticket_id,
                "message_db_id": message_db_id,
                "filename": attachment.filename[:255],
                "content_type": attachment.content_type[:255],
                "size": len(attachment.payload),
                "sha256": blobs.put(attachment.payload, session=session),
            }
            for attachment in files.attachments
        ],
    )
    for rejected in files.rejected:
        session.add(
            RejectedAttachment(
                ticket_id=ticket_id,
                message_db_id=message_db_id,
                filename=rejected.filename[:255],
                reason=rejected.reason,
            )
        )
        add_event(
            session,
            ticket_id=ticket_id,
            kind=EventKind.ATTACHMENT_REJECTED,
            field="attachment",
            new=f"{rejected.filename}: {rejected.reason}",
            actor="ticketgate",
            inbox_id=inbox_id,
        )
