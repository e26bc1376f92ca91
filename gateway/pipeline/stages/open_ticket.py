"""Stage 7: everything else opens a ticket."""

from __future__ import annotations

from gateway.pipeline.happenings import TicketOpened
from gateway.pipeline.new_ticket import UNKNOWN_SENDER, IntakeDefaults, plan_new_ticket
from gateway.pipeline.requester import find_requester
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)
from gateway.pipeline.stages.files import store_files
from gateway.store import tickets as store
from gateway.store.models import Ticket


def open_ticket_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Everything else opens a ticket (automated mail too, it just gets no acknowledgement)."""
    mail = ctx.parsed
    defaults = deps.intake_defaults.get(ctx.item.envelope.source, IntakeDefaults())
    plan = plan_new_ticket(mail, ctx.item.envelope, settings=deps.settings, ours=deps.ours, defaults=defaults)
    ticket = store.create_ticket(
        ctx.session,
        title=plan.title,
        description=plan.description,
        priority=plan.priority,
        category=plan.category,
        tier=plan.tier,
        requester_address=plan.requester.address,
        requester_name=plan.requester.name,
        created_at=ctx.item.received_at,
        follow_up_of_id=ctx.thread.follow_up_of if ctx.thread is not None else None,
        possible_follow_up_of_id=ctx.thread.possible_follow_up_of if ctx.thread is not None else None,
    )
    message = store.add_message(
        ctx.session,
        ticket_id=ticket.id,
        inbox_id=ctx.item.id,
        message_id=mail.message_id,
        kind="mail",
        author_address=plan.requester.address,
        author_name=plan.requester.name,
        role="requester",
        visibility="public",
        subject=mail.subject,
        text=plan.text,
        threaded_by="new",
    )
    actor = plan.requester.address
    store.add_event(
        ctx.session,
        ticket_id=ticket.id,
        kind="created",
        field="status",
        new=ticket.status,
        actor=actor,
        inbox_id=ctx.item.id,
    )
    if plan.requester.address == UNKNOWN_SENDER:
        # SPEC §1: nobody named an address; staff see why on the ticket.
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind="requester_unknown",
            field="requester",
            new=find_requester(mail, ctx.item.envelope).reason,
            actor="ticketgate",
            inbox_id=ctx.item.id,
        )
    _record_follow_up(ctx, deps, ticket, actor=actor)
    for tag in plan.tags:
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind="tag",
            field="tag",
            new=tag,
            actor=actor,
            inbox_id=ctx.item.id,
        )
    for note in ctx.notes:
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind="message_id_collision",
            new=note,
            actor="ticketgate",
            inbox_id=ctx.item.id,
        )
    files = store_files(ctx, deps, ticket_id=ticket.id, message_db_id=message.id)
    assert ctx.classification is not None
    ctx.happenings.append(
        TicketOpened(
            ticket_id=ticket.id,
            message_db_id=message.id,
            requester=plan.requester,
            acknowledge=not ctx.classification.suppress_notifications,
            tags=plan.tags,
            has_screenshot=bool(files.screenshots),
            text=plan.text,
        )
    )
    return ProcessResult(ctx.item.id, Outcome.TICKET, ticket.id, f"new ticket {ticket.id}")


def _record_follow_up(ctx: MailContext, deps: ProcessorDeps, ticket: Ticket, *, actor: str) -> None:
    """A reply to a Closed ticket is its follow-up; a stranger's reference only a possible one (SPEC §4).

    The link itself is a column of the new ticket (set by `create_ticket`); this is its event."""
    match = ctx.thread
    if match is None:
        return
    prefix = deps.settings.gateway.ticket_prefix
    links = (
        ("follow_up_of", match.follow_up_of),
        ("possible_follow_up_of", match.possible_follow_up_of),
    )
    for kind, linked in links:
        if linked is None:
            continue
        how = match.link_by.value if match.link_by is not None else "new"
        store.add_event(
            ctx.session,
            ticket_id=ticket.id,
            kind=kind,
            field="link",
            new=f"{prefix}-{linked} ({how})",
            actor=actor,
            inbox_id=ctx.item.id,
        )
