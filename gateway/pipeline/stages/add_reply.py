"""Stage 6: a mail that threaded joins the conversation; its commands and the lifecycle apply."""

from __future__ import annotations

from gateway.pipeline.quotes import trim_reply
from gateway.pipeline.reply import plan_reply
from gateway.pipeline.stages.apply_reply import apply_reply, lock_ticket
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.pipeline.stages.files import store_files
from gateway.store import tickets as store


def reply_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """A mail that threaded onto a ticket joins its conversation; its commands and the lifecycle apply."""
    if ctx.thread is None or ctx.thread.ticket_id is None:
        return None
    assert ctx.sender is not None and ctx.classification is not None
    mail = ctx.parsed
    settings = deps.settings
    ticket, before = lock_ticket(ctx.session, ctx.thread.ticket_id)
    plan = plan_reply(
        before,
        sender=ctx.sender.address,
        staff=ctx.staff,
        new_text=trim_reply(mail.text, html=mail.html).text,
        vocabulary=settings.tickets.vocabulary,
        categories=settings.tickets.categories,
        staff_addresses=settings.staff.addresses,
        staff_reply_status=settings.tickets.staff_reply_status,
    )
    applied = apply_reply(
        ctx.session,
        ticket,
        plan,
        author=ctx.sender,
        staff=ctx.staff,
        inbox_id=ctx.item.id,
        message_id=mail.message_id,
        subject=mail.subject,
        threaded_by=ctx.thread.threaded_by.value,
        notify=not ctx.classification.suppress_notifications,
    )
    for note in ctx.notes:
        store.add_event(
            ctx.session, ticket_id=ticket.id, kind="message_id_collision", new=note, actor="ticketgate"
        )
    store_files(ctx, deps, ticket_id=ticket.id, message_db_id=applied.message.id)
    ctx.happenings.extend(applied.happenings)
    detail = f"{plan.role} reply on ticket {ticket.id} ({ctx.thread.threaded_by.value})"
    return ProcessResult(ctx.item.id, Outcome.REPLY, ticket.id, detail)
