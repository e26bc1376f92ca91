"""Stage 4: which ticket the mail joins (SPEC §4), and whether its sender is staff (§5)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.domain import Status
from gateway.pipeline.classify import MailKind
from gateway.pipeline.new_ticket import requester_of
from gateway.pipeline.staff_auth import authenticate_staff
from gateway.pipeline.stages.context import (
    MailContext,
    ProcessorDeps,
    ProcessResult,
)
from gateway.pipeline.thread import TicketRef, find_thread, reply_token_of
from gateway.store import tickets as store
from gateway.store.models import Ticket


class _StoreLookup:
    """The store as threading sees it (gateway.pipeline.thread.ThreadLookup)."""

    def __init__(self, session: Session, ours: GatewayAddresses) -> None:
        self._session = session
        self._ours = ours

    def ticket(self, ticket_id: int) -> TicketRef | None:
        ticket = self._session.get(Ticket, ticket_id)
        return TicketRef(ticket.id, Status(ticket.status)) if ticket is not None else None

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        ticket = store.ticket_for_any_message_ids(self._session, message_ids)
        return TicketRef(ticket.id, Status(ticket.status)) if ticket is not None else None

    def is_participant(self, ticket_id: int, address: str) -> bool:
        if self._ours.is_ours(address):
            return False
        return address.strip().lower() in store.ticket_participants(self._session, ticket_id)


def thread_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Which ticket the mail joins (SPEC §4), and whether its sender is authenticated staff (§5)."""
    assert ctx.classification is not None
    mail = ctx.parsed
    gateway = deps.settings.gateway
    ctx.sender = requester_of(mail, ctx.item.envelope)
    token = reply_token_of(
        mail, ctx.item.envelope, ours=deps.ours, prefix=gateway.ticket_prefix, secret=gateway.secret
    )
    if ctx.classification.kind is not MailKind.AUTO_REPLY:  # an out-of-office never acts for staff
        ctx.staff = authenticate_staff(
            mail,
            ctx.item.raw,
            sender=ctx.sender.address,
            staff=deps.settings.staff,
            token_audience=token.audience if token is not None else None,
            dnsfunc=deps.dkim_dns,
        )
    ctx.thread = find_thread(
        mail,
        token=token,
        sender=ctx.sender.address,
        sender_is_staff=ctx.staff.is_staff,
        lookup=_StoreLookup(ctx.session, deps.ours),
        ticket_prefix=gateway.ticket_prefix,
        vocabulary=deps.settings.tickets.vocabulary,
    )
    return None
