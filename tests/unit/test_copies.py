"""Who a mail copies onto its ticket (SPEC §13 Copies), `#cc` and `#merge` as commands, and their
rights: generated To/Cc sets around gateway, staff and requester addresses, read by the real parser."""

from __future__ import annotations

from email.utils import formataddr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.addresses import GatewayAddresses
from gateway.config.settings import StaffSettings
from gateway.domain import DEFAULT_CATEGORIES, DEFAULT_VOCABULARY, Priority, Status
from gateway.mail.parse import parse_mail
from gateway.pipeline.commands import merge_target, parse_commands
from gateway.pipeline.copies import copied_on_opening, copied_on_reply, why_not_copied
from gateway.pipeline.reply_plan import TicketState, plan_commands
from gateway.pipeline.staff_auth import NOT_STAFF, StaffAuth, StaffMethod

OURS = GatewayAddresses(["support@smilepass.example", "billing@smilepass.example"])
STAFF = StaffSettings(
    addresses=("ana@smilepass.example", "ben@smilepass.example"),
    triage="triage@smilepass.example",
    security_contact="security@smilepass.example",
    trusted_authserv_ids=(),
    on_call="oncall@smilepass.example",
)
REQUESTER = "maria@customer.example"

# Addresses that must never become participants, in the case variants mail clients write.
GATEWAY = [
    "support@smilepass.example",
    "Support@SmilePass.example",
    "support+billing@smilepass.example",
    "support+SP-4.abc@smilepass.example",
    "billing@smilepass.example",
]
STAFF_SIDE = [
    "ana@smilepass.example",
    "ANA@smilepass.example",
    "ben@smilepass.example",
    "triage@smilepass.example",
    "oncall@smilepass.example",
    "security@smilepass.example",
]
REQUESTERS = ["maria@customer.example", "Maria@Customer.Example"]
MACHINES = ["noreply@customer.example", "mailer-daemon@customer.example", "no-reply@x.example"]
# People who may be copied: a local part and a domain, of any case.
people = st.builds(
    lambda local, domain, upper: f"{local}@{domain}".upper() if upper else f"{local}@{domain}",
    st.sampled_from(["luis", "boss", "eva", "j.smith", "ops-team", "x_y"]),
    st.sampled_from(["customer.example", "partner.example", "bigcorp.example"]),
    st.booleans(),
)
never = st.sampled_from(GATEWAY + STAFF_SIDE + REQUESTERS + MACHINES)
names = st.sampled_from(["", "Luis", "Boss, The", "Ünïcode Näme", 'Quote "Q"'])
entries = st.lists(st.tuples(names, st.one_of(people, never)), max_size=8)


def mail_with(
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]],
    *,
    sender: str = REQUESTER,
    to_first: str = "support@smilepass.example",
    message_id: str = "<p1@customer.example>",
) -> bytes:
    """The mail as bytes, its headers written by hand: the email package's own folding of a long Cc
    with encoded names can encode a separating comma (a CPython bug), which is no mail a client sends."""
    to_header = ", ".join(formataddr(entry) for entry in [("", to_first), *to])
    lines = [f"From: {formataddr(('Someone', sender))}", f"To: {to_header}"]
    if cc:
        lines.append(f"Cc: {', '.join(formataddr(entry) for entry in cc)}")
    lines += ["Subject: Payouts", f"Message-ID: {message_id}", "", "Payouts are stuck.", ""]
    return "\r\n".join(lines).encode("ascii")


def expected(entries: list[tuple[str, str]]) -> list[str]:
    """The rule, written independently: each person once, in order, lower case; nobody else."""
    wanted: list[str] = []
    for _, address in entries:
        key = address.lower()
        never_copied = {a.lower() for a in GATEWAY + STAFF_SIDE + REQUESTERS + MACHINES}
        if key not in never_copied and key not in wanted:
            wanted.append(key)
    return wanted


@settings(max_examples=150, deadline=None)
@given(to=entries, cc=entries)
def test_the_opening_mail_copies_exactly_the_people_in_to_and_cc(
    to: list[tuple[str, str]], cc: list[tuple[str, str]]
) -> None:
    mail = parse_mail(mail_with(to, cc))
    found = copied_on_opening(mail, requester=REQUESTER, ours=OURS, staff=STAFF)
    assert [person.address for person in found] == expected(to + cc)


@settings(max_examples=150, deadline=None)
@given(to=entries, cc=entries)
def test_a_reply_copies_only_the_people_in_its_cc(
    to: list[tuple[str, str]], cc: list[tuple[str, str]]
) -> None:
    mail = parse_mail(mail_with(to, cc))
    found = copied_on_reply(mail, requester=REQUESTER, ours=OURS, staff=STAFF)
    assert [person.address for person in found] == expected(cc)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("support+urgent@smilepass.example", "gateway address"),
        ("Triage@SmilePass.example", "staff address"),
        ("MARIA@customer.example", "the requester"),
        ("postmaster@customer.example", "never mailed"),
        ("two@a.example, three@b.example", "not one deliverable address"),
        ("no-at-sign", "not one deliverable address"),
    ],
)
def test_why_an_address_is_not_copied(address: str, why: str) -> None:
    assert why in (why_not_copied(address, requester=REQUESTER, ours=OURS, staff=STAFF) or "")


# --- #cc and #merge as commands ------------------------------------------------------------------


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_commands(text, vocabulary=DEFAULT_VOCABULARY, categories=DEFAULT_CATEGORIES)


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("#cc add Luis <Luis@Customer.example>", "participants", "add luis@customer.example"),
        ("#cc + luis@customer.example", "participants", "add luis@customer.example"),
        ("#cc remove luis@customer.example", "participants", "remove luis@customer.example"),
        ("#cc luis@customer.example", None, None),
        ("#cc add nobody", None, None),
        ("#merge SP-41", "merged_into", "SP-41"),
        ("#merge [sp-41]", "merged_into", "SP-41"),
        ("#merge #41", "merged_into", "41"),
        ("#merge 41", "merged_into", "41"),
        ("#merge", None, None),
        ("#merge the other one", None, None),
    ],
)
def test_cc_and_merge_lines(line: str, field: str | None, value: str | None) -> None:
    [command] = parse(line + "\nText.").commands
    assert (command.field.value if command.field else None, command.value) == (field, value)


def test_a_merge_value_names_a_ticket_of_this_desk_only() -> None:
    assert merge_target("SP-41", prefix="SP") == 41
    assert merge_target("41", prefix="SP") == 41
    assert merge_target("TG-41", prefix="SP") is None


STAFF_AUTH = StaffAuth(staff_address=True, method=StaffMethod.REPLY_ADDRESS)


def plan(text: str, *, sender: str, staff: StaffAuth = NOT_STAFF, status: Status = Status.OPEN):  # type: ignore[no-untyped-def]
    state = TicketState(7, status, Priority.LOW, "Technical Issues & Bugs", None, REQUESTER)
    return plan_commands(
        state,
        parse(text),
        sender=sender,
        staff=staff,
        staff_addresses=STAFF.addresses,
        staff_reply_status=Status.WAITING,
        merge_targets={"SP-41": 41, "SP-7": "a ticket cannot be merged into itself"},
        refuse_copy=lambda a: why_not_copied(a, requester=REQUESTER, ours=OURS, staff=STAFF),
    )


def test_staff_merge_closes_the_ticket() -> None:
    done = plan("#merge SP-41\n", sender="ana@smilepass.example", staff=STAFF_AUTH)
    assert (done.merged_into, done.final.status, done.refused) == (41, Status.CLOSED, ())
    assert done.receipt


@pytest.mark.parametrize(
    ("text", "status", "reason"),
    [
        ("#merge SP-7\n", Status.OPEN, "cannot be merged into itself"),
        ("#merge SP-99\n", Status.OPEN, "no ticket SP-99"),
        ("#merge SP-41\n", Status.CLOSED, "this ticket is Closed"),
        ("#merge SP-41\n#merge SP-41\n", Status.OPEN, "this ticket is Closed"),
    ],
)
def test_a_refused_merge(text: str, status: Status, reason: str) -> None:
    done = plan(text, sender="ana@smilepass.example", staff=STAFF_AUTH, status=status)
    assert reason in done.refused[-1].reason


def test_who_may_change_the_copies_and_merge() -> None:
    # The requester may change who is copied, not merge; a participant or stranger may do neither.
    mine = plan("#cc add luis@customer.example\n#merge SP-41\n", sender=REQUESTER)
    assert [(c.add, c.address) for c in mine.copies] == [(True, "luis@customer.example")]
    assert [r.line for r in mine.refused] == ["#merge SP-41"] and mine.merged_into is None
    other = plan("#cc add eve@evil.example\n#cc remove luis@customer.example\n", sender="eve@evil.example")
    assert other.copies == () and len(other.refused) == 2
    staff = plan("#cc add ben@smilepass.example\n", sender="ana@smilepass.example", staff=STAFF_AUTH)
    assert staff.copies == () and "staff address" in staff.refused[0].reason
