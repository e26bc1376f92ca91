"""Keeps a mail's screenshots and attachments on the ticket (SPEC §6): used by add_reply and open_ticket.

With them go the events of parts that could not be opened (SPEC §13): an encrypted mail, and a
winmail.dat that is not readable TNEF (kept as a file all the same)."""

from __future__ import annotations

from gateway.domain import Address, EventKind, SortedAttachments
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
    record_unread_parts(run, mail, ticket_id=ticket_id)
    return files


def record_unread_parts(run: MailRun, mail: Parsed, *, ticket_id: int) -> None:
    """The `encrypted` and `attachment_unreadable` events of this mail, on its ticket."""
    parsed = mail.mail
    events = [
        store.event_row(
            ticket_id=ticket_id,
            kind=EventKind.ATTACHMENT_UNREADABLE,
            field="attachment",
            new=reason,
            actor="ticketgate",
            inbox_id=run.item.id,
        )
        for reason in parsed.unreadable
    ]
    if parsed.encrypted:
        events.append(
            store.event_row(
                ticket_id=ticket_id,
                kind=EventKind.ENCRYPTED,
                field="message",
                new=f"{parsed.encrypted} encrypted: the text cannot be read here; the original mail is kept",
                actor="ticketgate",
                inbox_id=run.item.id,
            )
        )
    store.add_events(run.session, events)
