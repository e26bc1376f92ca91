"""Keeps a message's screenshots and attachments: bytes in the blob store, rows in the database.

Blobs are written before the transaction commits (the database store writes them in it); a
rollback leaves at most an unreferenced file, which is harmless (content-addressed, written again
by the retry) — never a row without its bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.domain import EventKind, SortedAttachments
from gateway.store.blobs import BlobStore
from gateway.store.models import Attachment, RejectedAttachment, Screenshot
from gateway.store.tickets import add_event


def of_message(session: Session, message_db_id: int) -> tuple[Sequence[Screenshot], Sequence[Attachment]]:
    """A message's screenshots and other attachments, each in the order the mail carried them."""
    shots = session.scalars(
        select(Screenshot).where(Screenshot.message_db_id == message_db_id).order_by(Screenshot.id)
    ).all()
    attachments = session.scalars(
        select(Attachment).where(Attachment.message_db_id == message_db_id).order_by(Attachment.id)
    ).all()
    return shots, attachments


def screenshots_before(session: Session, screenshot: Screenshot) -> int:
    """How many of its ticket's screenshots came before `screenshot` (`tickets screenshot REF N`
    counts from 1 over the whole ticket)."""
    query = select(func.count()).where(
        Screenshot.ticket_id == screenshot.ticket_id, Screenshot.id < screenshot.id
    )
    return int(session.scalar(query) or 0)


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
