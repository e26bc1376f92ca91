"""Stage thread_mail: which ticket the mail joins (SPEC §4), and whether its sender is staff (§5)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.domain import Address, Status
from gateway.mail.requester import find_requester
from gateway.pipeline.classify import MailKind
from gateway.pipeline.new_ticket_plan import requester_of
from gateway.pipeline.staff_auth import NOT_STAFF, StaffAuth, authenticate_staff
from gateway.pipeline.stage_values import Classified, MailRun, Threaded, grow
from gateway.pipeline.thread import TicketRef, find_thread, reply_token_of
from gateway.store import tickets as store
from gateway.store.models import Ticket
from gateway.store.participants import final_ticket
from gateway.store.rows import keep


class _StoreLookup:
    """The store as threading sees it (gateway.pipeline.thread.ThreadLookup). A ticket that was
    merged is seen as the ticket it was merged into (SPEC §13 Merges), so mail threaded to SP-42 by
    its reply address, its references or its subject reference joins SP-41."""

    def __init__(self, session: Session, ours: GatewayAddresses) -> None:
        self._session = session
        self._ours = ours

    def ticket(self, ticket_id: int) -> TicketRef | None:
        return self._ref(self._session.get(Ticket, ticket_id))

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        return self._ref(store.ticket_for_any_message_ids(self._session, message_ids))

    def _ref(self, ticket: Ticket | None) -> TicketRef | None:
        if ticket is None:
            return None
        ticket = final_ticket(self._session, ticket)
        keep(self._session, ticket)  # the reply's stages read it next (add_reply locks it)
        return TicketRef(ticket.id, Status(ticket.status))

    def is_participant(self, ticket_id: int, address: str) -> bool:
        if self._ours.is_ours(address):
            return False
        return address.strip().lower() in store.ticket_participants(self._session, ticket_id)


def _staff_only_from_from(mail: Classified, run: MailRun, sender: Address) -> StaffAuth | None:
    """Staff rights belong to the From address: a staff address that is the requester only because
    From named nobody (taken from Sender, Reply-To or the envelope) is a customer, whatever else the
    mail carries. None when the requester came from From (or is no staff address)."""
    if not run.deps.settings.staff.is_staff(sender.address):
        return None
    source = find_requester(mail.mail, run.item.envelope).source
    if source == "From":
        return None
    return StaffAuth(
        staff_address=True,
        reason=(
            f"{sender.address} is a staff address but is not authenticated: it was named only by "
            f"{source or 'nothing'}, not by From, and staff rights go with the From address"
        ),
    )


def thread_mail(mail: Classified, run: MailRun) -> Threaded:
    """Which ticket the mail joins (SPEC §4), and whether its sender is authenticated staff (§5)."""
    deps, item = run.deps, run.item
    gateway = deps.settings.gateway
    sender = requester_of(mail.mail, item.envelope)
    token = reply_token_of(
        mail.mail, item.envelope, ours=deps.ours, prefix=gateway.ticket_prefix, secret=gateway.secret
    )
    staff = NOT_STAFF
    if mail.classification.kind is not MailKind.AUTO_REPLY:  # an out-of-office never acts for staff
        staff = _staff_only_from_from(mail, run, sender) or authenticate_staff(
            mail.mail,
            item.raw,
            sender=sender.address,
            staff=deps.settings.staff,
            token_audience=token.audience if token is not None else None,
            dnsfunc=deps.dkim_dns,
        )
    thread = find_thread(
        mail.mail,
        token=token,
        sender=sender.address,
        sender_is_staff=staff.is_staff,
        lookup=_StoreLookup(run.session, deps.ours),
        ticket_prefix=gateway.ticket_prefix,
        vocabulary=deps.settings.tickets.vocabulary,
    )
    return grow(mail, Threaded, sender=sender, staff=staff, thread=thread)
