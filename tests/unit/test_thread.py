"""Threading (SPEC §4): reply address, then Message-IDs, then a subject reference from a participant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.addresses import GatewayAddresses
from gateway.domain import DEFAULT_VOCABULARY, Envelope, Status
from gateway.mail.parse import parse_mail
from gateway.pipeline.thread import ThreadedBy, TicketRef, find_thread, reply_token_of
from gateway.reply_address import reply_address
from tests.helpers import TEST_SECRET, make_mail

OURS = GatewayAddresses(["support@smilepass.example"])
MARIA = "maria@customer.example"


@dataclass
class Tickets:
    """An in-memory store with the shape threading reads."""

    status: dict[int, Status] = field(default_factory=dict)
    message_ids: dict[str, int] = field(default_factory=dict)
    people: dict[int, set[str]] = field(default_factory=dict)

    def ticket(self, ticket_id: int) -> TicketRef | None:
        found = self.status.get(ticket_id)
        return TicketRef(ticket_id, found) if found is not None else None

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        for mid in reversed(message_ids):
            if mid in self.message_ids:
                return self.ticket(self.message_ids[mid])
        return None

    def is_participant(self, ticket_id: int, address: str) -> bool:
        return address.lower() in self.people.get(ticket_id, set())


def store() -> Tickets:
    return Tickets(
        status={42: Status.WAITING, 43: Status.CLOSED, 44: Status.OPEN},
        message_ids={"first@customer.example": 42, "ack-43@smilepass.example": 43},
        people={42: {MARIA}, 43: {MARIA}, 44: {"other@customer.example"}},
    )


def to_reply(ticket_id: int, audience: str = "requester") -> str:
    return reply_address(
        "support@smilepass.example", prefix="SP", ticket_id=ticket_id, audience=audience, secret=TEST_SECRET
    )


def thread(
    raw: bytes,
    *,
    rcpt: str = "support@smilepass.example",
    staff: bool = False,
    tickets: Tickets | None = None,
):  # type: ignore[no-untyped-def]
    mail = parse_mail(raw)
    envelope = Envelope(mail_from="", rcpt_tos=(rcpt,), source="smtp")
    token = reply_token_of(mail, envelope, ours=OURS, prefix="SP", secret=TEST_SECRET)
    assert mail.sender is not None
    return find_thread(
        mail,
        token=token,
        sender=mail.sender.address,
        sender_is_staff=staff,
        lookup=tickets or store(),
        ticket_prefix="SP",
        vocabulary=DEFAULT_VOCABULARY,
    )


def test_a_reply_address_threads_first() -> None:
    # Even with a subject and references naming other tickets: the token is the most trusted.
    raw = make_mail("Re: [SP-44] x", headers={"In-Reply-To": "<ack-43@smilepass.example>"})
    match = thread(raw, rcpt=to_reply(42))
    assert (match.ticket_id, match.threaded_by, match.audience) == (42, ThreadedBy.REPLY_ADDRESS, "requester")


def test_without_an_envelope_the_reply_address_is_read_from_the_headers() -> None:
    mail = parse_mail(make_mail("hello", to=to_reply(42, "staff")))
    token = reply_token_of(mail, Envelope("", (), "pipe"), ours=OURS, prefix="SP", secret=TEST_SECRET)
    assert token is not None and (token.ticket_id, token.audience) == (42, "staff")


def test_a_forged_or_moved_token_is_ignored() -> None:
    moved = to_reply(42).replace("SP-42", "SP-44")
    assert thread(make_mail("hi", sender="eve@evil.example"), rcpt=moved).threaded_by is ThreadedBy.NEW
    other_secret = reply_address(
        "support@smilepass.example", prefix="SP", ticket_id=42, audience="staff", secret="another-secret-xyz"
    )
    assert thread(make_mail("hi"), rcpt=other_secret).ticket_id is None


def test_in_reply_to_alone_threads() -> None:
    match = thread(make_mail("no ref here", headers={"In-Reply-To": "<first@customer.example>"}))
    assert (match.ticket_id, match.threaded_by) == (42, ThreadedBy.REFERENCES)


def test_references_thread_whoever_the_sender_is() -> None:
    raw = make_mail(
        "Re: something",
        sender="colleague@customer.example",
        headers={"References": "<unknown@x> <first@customer.example> <also-unknown@y>"},
    )
    assert thread(raw).ticket_id == 42


def test_a_subject_reference_threads_a_participant() -> None:
    match = thread(make_mail("Re: [SP-42] ADD button"))
    assert (match.ticket_id, match.threaded_by) == (42, ThreadedBy.SUBJECT_REF)


def test_a_strangers_subject_reference_opens_a_possible_follow_up() -> None:
    match = thread(make_mail("Re: [SP-42] ADD button", sender="eve@evil.example"))
    assert match.ticket_id is None and match.threaded_by is ThreadedBy.NEW
    assert match.possible_follow_up_of == 42 and match.follow_up_of is None


def test_authenticated_staff_may_name_any_ticket() -> None:
    assert thread(make_mail("[SP-44] note", sender="ana@smilepass.example"), staff=True).ticket_id == 44


def test_a_reference_to_a_missing_ticket_opens_a_plain_new_ticket() -> None:
    match = thread(make_mail("[SP-999] hello"))
    assert match == thread(make_mail("hello"))
    assert match.possible_follow_up_of is None


def test_a_customer_reply_to_a_closed_ticket_opens_a_follow_up() -> None:
    for raw, rcpt in (
        (make_mail("Re: thanks", headers={"In-Reply-To": "<ack-43@smilepass.example>"}), None),
        (make_mail("Re: [SP-43] thanks"), None),
        (make_mail("thanks"), to_reply(43)),
    ):
        match = thread(raw, rcpt=rcpt or "support@smilepass.example")
        assert match.ticket_id is None and match.follow_up_of == 43 and match.answered == 43


def test_staff_writing_to_a_closed_ticket_join_it() -> None:
    match = thread(make_mail("#note closing remarks"), rcpt=to_reply(43, "staff"), staff=True)
    assert match.ticket_id == 43 and match.follow_up_of is None
