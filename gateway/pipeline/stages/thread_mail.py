"""Stage 4: which ticket the mail joins (SPEC §4), and whether its sender is staff (§5)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.domain import Status
from gateway.pipeline.classify import MailKind
from gateway.pipeline.new_ticket import requester_of
from gateway.pipeline.requester import find_requester
from gateway.pipeline.staff_auth import StaffAuth, authenticate_staff
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


def _staff_only_from_from(ctx: MailContext, deps: ProcessorDeps) -> StaffAuth | None:
    """Staff rights belong to the From address: a staff address that is the requester only because
    From named nobody (taken from Sender, Reply-To or the envelope) is a customer, whatever else the
    mail carries. None when the requester came from From (or is no staff address)."""
    assert ctx.sender is not None
    if not deps.settings.staff.is_staff(ctx.sender.address):
        return None
    source = find_requester(ctx.parsed, ctx.item.envelope).source
    if source == "From":
        return None
    return StaffAuth(
        staff_address=True,
        reason=(
            f"{ctx.sender.address} is a staff address but is not authenticated: it was named only by "
            f"{source or 'nothing'}, not by From, and staff rights go with the From address"
        ),
    )


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
        ctx.staff = _staff_only_from_from(ctx, deps) or authenticate_staff(
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
