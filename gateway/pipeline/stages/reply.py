"""Stage 6: a mail that threaded joins the conversation; its commands and the lifecycle apply."""

from __future__ import annotations

from gateway.domain import Priority, Status
from gateway.pipeline.happenings import (
    CommandResult,
    ReplyAdded,
    StatusChanged,
)
from gateway.pipeline.quotes import trim_reply
from gateway.pipeline.reply import KIND_REFUSED, KIND_UNAUTHENTICATED, TicketState, plan_reply
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.pipeline.stages.files import store_files
from gateway.store import tickets as store
from gateway.store.models import Ticket, utcnow


def reply_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """A mail that threaded onto a ticket joins its conversation; its commands and the lifecycle apply."""
    if ctx.thread is None or ctx.thread.ticket_id is None:
        return None
    assert ctx.sender is not None and ctx.classification is not None
    mail = ctx.parsed
    settings = deps.settings
    # Locked (PostgreSQL) and read afresh: two replies to one ticket at once must not lose a change.
    ticket = ctx.session.get_one(Ticket, ctx.thread.ticket_id, with_for_update=True, populate_existing=True)
    before = TicketState(
        id=ticket.id,
        status=Status(ticket.status),
        priority=Priority(ticket.priority),
        category=ticket.category,
        assignee=ticket.assignee,
        requester=ticket.requester_address,
    )
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
    after = plan.final
    store.update_ticket(
        ticket,
        status=after.status,
        priority=after.priority,
        category=after.category,
        assignee=after.assignee,
        now=utcnow(),
    )
    message = store.add_message(
        ctx.session,
        ticket_id=ticket.id,
        inbox_id=ctx.item.id,
        message_id=mail.message_id,
        kind="mail",
        author_address=ctx.sender.address,
        author_name=ctx.sender.name,
        role=plan.role,
        visibility=plan.visibility,
        subject=mail.subject,
        text=plan.text,
        threaded_by=ctx.thread.threaded_by.value,
    )
    actor = ctx.sender.address

    def event(kind: str, field: str | None = None, old: str | None = None, new: str | None = None) -> None:
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind=kind,
            field=field,
            old=old,
            new=new,
            actor=actor,
            inbox_id=ctx.item.id,
        )

    if ctx.staff.staff_address and not ctx.staff.is_staff:
        event(KIND_UNAUTHENTICATED, new=ctx.staff.reason)
    for change in plan.changes:
        event(change.kind, change.field, change.old, change.new)
    for refusal in plan.refused:
        event(KIND_REFUSED, refusal.field, None, f"{refusal.line} — {refusal.reason}")
    for note in ctx.notes:
        store.add_event(
            ctx.session, ticket_id=ticket.id, kind="message_id_collision", new=note, actor="ticketgate"
        )
    store_files(ctx, deps, ticket_id=ticket.id, message_db_id=message.id)

    ctx.happenings.append(
        ReplyAdded(
            ticket_id=ticket.id,
            message_db_id=message.id,
            author=ctx.sender,
            role=plan.role,
            visibility=plan.visibility,
            notify=not ctx.classification.suppress_notifications,
        )
    )
    for change in plan.status_changes:
        ctx.happenings.append(StatusChanged(ticket.id, change.old or "", change.new or "", actor))
    if plan.receipt:
        ctx.happenings.append(
            CommandResult(
                ticket_id=ticket.id,
                staff=ctx.sender,
                applied=plan.applied,
                refused=tuple((r.line, r.reason) for r in plan.refused),
            )
        )
    detail = f"{plan.role} reply on ticket {ticket.id} ({ctx.thread.threaded_by.value})"
    return ProcessResult(ctx.item.id, Outcome.REPLY, ticket.id, detail)
