"""Threading (SPEC §4): which ticket a mail joins, in order of trust; pure, the store is passed in.

1. a reply address (`support+SP-42.<token>@…`) whose token verifies for that ticket;
2. `In-Reply-To`, then `References` (latest first), naming a stored Message-ID (inbound or outbound);
3. a ticket reference in the subject, only when the sender is already on that ticket (or is
   authenticated staff, who may write into any ticket).
A stranger's subject reference opens a new ticket marked "possible follow-up"; a customer's reply to a
Closed ticket opens a new ticket that is a follow-up of it. Authenticated staff writing to a Closed
ticket join it instead (their commands then meet "Closed is final"), so staff never open tickets
on their own closing remarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope, ParsedMail, Status, TagVocabulary
from gateway.mail.subject import parse_subject
from gateway.pipeline.new_ticket_plan import recipient_addresses
from gateway.reply_address import ReplyToken, parse_reply_detail


class ThreadedBy(StrEnum):
    """How a message was threaded, as recorded on it (SPEC §4)."""

    REPLY_ADDRESS = "reply-address"
    REFERENCES = "references"
    SUBJECT_REF = "subject-ref"
    NEW = "new"


@dataclass(frozen=True)
class TicketRef:
    """What threading needs to know of a stored ticket."""

    id: int
    status: Status


class ThreadLookup(Protocol):
    """The store, as threading sees it."""

    def ticket(self, ticket_id: int) -> TicketRef | None: ...

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        """The ticket of the last of these Message-IDs that is stored (inbound or outbound)."""
        ...

    def is_participant(self, ticket_id: int, address: str) -> bool: ...


@dataclass(frozen=True)
class ThreadMatch:
    """Where a mail goes: `ticket_id` to join, or None to open a new ticket (perhaps linked)."""

    ticket_id: int | None
    threaded_by: ThreadedBy
    follow_up_of: int | None = None  # it answered this Closed ticket
    possible_follow_up_of: int | None = None  # a stranger named this ticket in the subject
    audience: str | None = None  # of the verified reply token, when the mail came to one
    link_by: ThreadedBy | None = None  # how the follow-up link was found

    @property
    def answered(self) -> int | None:
        """The ticket the mail answers, Closed or not (an auto-reply is recorded there)."""
        return self.ticket_id if self.ticket_id is not None else self.follow_up_of


NEW_TICKET = ThreadMatch(None, ThreadedBy.NEW)


def reply_token_of(
    mail: ParsedMail, envelope: Envelope, *, ours: GatewayAddresses, prefix: str, secret: str
) -> ReplyToken | None:
    """The verified reply token of the first recipient that carries one (RCPT TO, else the headers)."""
    for address in recipient_addresses(mail, envelope):
        match = ours.match(address)
        if match is None or not match.detail:
            continue
        token = parse_reply_detail(match.detail, prefix=prefix, secret=secret)
        if token is not None:
            return token
    return None


def find_thread(
    mail: ParsedMail,
    *,
    token: ReplyToken | None,
    sender: str,
    sender_is_staff: bool,
    lookup: ThreadLookup,
    ticket_prefix: str,
    vocabulary: TagVocabulary,
) -> ThreadMatch:
    """The ticket `mail` joins, or how the new ticket it opens is linked (rules in the module doc)."""
    audience = token.audience if token is not None else None

    def join(ticket: TicketRef, by: ThreadedBy) -> ThreadMatch:
        if ticket.status is Status.CLOSED and not sender_is_staff:
            return ThreadMatch(None, ThreadedBy.NEW, follow_up_of=ticket.id, audience=audience, link_by=by)
        return ThreadMatch(ticket.id, by, audience=audience)

    if token is not None:
        ticket = lookup.ticket(token.ticket_id)
        if ticket is not None:
            return join(ticket, ThreadedBy.REPLY_ADDRESS)

    # In-Reply-To last, so it is tried first: it names the very mail being answered.
    referenced = lookup.ticket_for_message_ids((*mail.references, *mail.in_reply_to))
    if referenced is not None:
        return join(referenced, ThreadedBy.REFERENCES)

    refs = parse_subject(
        mail.subject, vocabulary=vocabulary, ticket_prefix=ticket_prefix, read_tags=False
    ).ticket_refs
    named_by_stranger: int | None = None
    for ref in refs:
        ticket = lookup.ticket(ref)
        if ticket is None:
            continue
        if sender_is_staff or lookup.is_participant(ticket.id, sender):
            return join(ticket, ThreadedBy.SUBJECT_REF)
        if named_by_stranger is None:
            named_by_stranger = ticket.id
    if named_by_stranger is not None:
        return ThreadMatch(
            None,
            ThreadedBy.NEW,
            possible_follow_up_of=named_by_stranger,
            audience=audience,
            link_by=ThreadedBy.SUBJECT_REF,
        )
    return ThreadMatch(None, ThreadedBy.NEW, audience=audience)
