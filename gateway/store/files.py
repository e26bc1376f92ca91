"""Keeps a message's screenshots and attachments: bytes in the blob store, rows in the database.

Blobs are written before the transaction commits (the database store writes them in it); a
rollback leaves at most an unreferenced file, which is harmless (content-addressed, written again
by the retry) — never a row without its bytes.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.domain import EventKind, SortedAttachments
from gateway.store.blobs import BlobStore
from gateway.store.models import Attachment, RejectedAttachment, Screenshot
from gateway.store.tickets import add_event


def add_files(
    session: Session,
    blobs: BlobStore,
    *,
    ticket_id: int,
    message_db_id: int,
    files: SortedAttachments,
    inbox_id: int,
) -> None:
    for shot in files.screenshots:
        session.add(
            Screenshot(
                ticket_id=ticket_id,
                message_db_id=message_db_id,
                sha256=blobs.put(shot.png, session=session),
                thumbnail_sha256=blobs.put(shot.thumbnail, session=session),
                width=shot.width,
                height=shot.height,
                filename=shot.filename[:255],
                content_type="image/png",
            )
        )
    for attachment in files.attachments:
        session.add(
            Attachment(
                ticket_id=ticket_id,
                message_db_id=message_db_id,
                filename=attachment.filename[:255],
                content_type=attachment.content_type[:255],
                size=len(attachment.payload),
                sha256=blobs.put(attachment.payload, session=session),
            )
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
