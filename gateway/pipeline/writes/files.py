"""Keeps a mail's screenshots and attachments on the ticket (SPEC §6)."""

from __future__ import annotations

from gateway.pipeline.new_ticket import requester_of
from gateway.pipeline.screenshots import ImageLimits, SortedAttachments, sort_attachments
from gateway.pipeline.stages.context import (
    MailContext,
    ProcessorDeps,
)
from gateway.store import tickets as store
from gateway.store.files import add_files


def store_files(
    ctx: MailContext, deps: ProcessorDeps, *, ticket_id: int, message_db_id: int
) -> SortedAttachments:
    limits = deps.settings.limits
    # The sender's earlier images are looked up only when there is something to compare: most
    # mail has no attachment, and this query is on every mail's path.
    known_logos = (
        store.repeated_small_images(
            ctx.session, (ctx.sender or requester_of(ctx.parsed, ctx.item.envelope)).address
        )
        if ctx.parsed.attachments
        else frozenset()
    )
    files = sort_attachments(
        ctx.parsed.attachments,
        limits=ImageLimits(
            max_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
            max_attachments=limits.max_attachments,
            max_attachment_bytes=limits.max_attachment_bytes,
        ),
        known_logo_hashes=known_logos,
    )
    add_files(
        ctx.session,
        deps.blobs,
        ticket_id=ticket_id,
        message_db_id=message_db_id,
        files=files,
        inbox_id=ctx.item.id,
    )
    return files
