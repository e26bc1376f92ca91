"""Keeps a mail's screenshots and attachments on the ticket (SPEC §6): used by add_reply and open_ticket."""

from __future__ import annotations

from gateway.domain import Address, SortedAttachments
from gateway.mail.screenshots import ImageLimits, sort_attachments
from gateway.pipeline.stage_values import MailRun, Parsed
from gateway.store import tickets as store
from gateway.store.files import add_files


def store_files(
    run: MailRun, mail: Parsed, *, sender: Address, ticket_id: int, message_db_id: int
) -> SortedAttachments:
    limits = run.deps.settings.limits
    attachments = mail.mail.attachments
    # The sender's earlier images are looked up only when there is something to compare: most
    # mail has no attachment, and this query is on every mail's path.
    known_logos = store.repeated_small_images(run.session, sender.address) if attachments else frozenset()
    files = sort_attachments(
        attachments,
        limits=ImageLimits(
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
            max_attachments=limits.max_attachments,
            max_attachment_bytes=limits.max_attachment_bytes,
        ),
        known_logo_hashes=known_logos,
    )
    add_files(
        run.session,
        run.deps.blobs,
        ticket_id=ticket_id,
        message_db_id=message_db_id,
        files=files,
        inbox_id=run.item.id,
    )
    return files
