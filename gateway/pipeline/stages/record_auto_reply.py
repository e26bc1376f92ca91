"""Stage 5: an auto-reply is recorded on the ticket it answers, and changes nothing."""

from __future__ import annotations

from gateway.pipeline.classify import MailKind
from gateway.pipeline.quotes import trim_reply
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.store import tickets as store
from gateway.store.models import Ticket


def auto_reply_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """An out-of-office joins its ticket as a record, or is recorded without one; nothing changes."""
    assert ctx.classification is not None
    if ctx.classification.kind is not MailKind.AUTO_REPLY:
        return None
    mail = ctx.parsed
    assert ctx.thread is not None and ctx.sender is not None
    # It joins the ticket it answers even when that one is Closed: it changes nothing there.
    answered = ctx.thread.answered
    ticket = ctx.session.get(Ticket, answered) if answered is not None else None
    threaded_by = ctx.thread.threaded_by if ctx.thread.ticket_id is not None else ctx.thread.link_by
    author = ctx.sender
    store.add_message(
        ctx.session,
        ticket_id=ticket.id if ticket else None,
        inbox_id=ctx.item.id,
        message_id=mail.message_id,
        kind="auto_reply",
        author_address=author.address,
        author_name=author.name,
        role="requester" if ticket and _same(author.address, ticket.requester_address) else "cc",
        visibility="internal",
        subject=mail.subject,
        text=trim_reply(mail.text, html=mail.html).text,
        threaded_by=threaded_by.value if ticket and threaded_by else "new",
    )
    where = f"on ticket {ticket.id}" if ticket else "without a ticket"
    return ProcessResult(ctx.item.id, Outcome.AUTO_REPLY, ticket.id if ticket else None, f"recorded {where}")


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()
