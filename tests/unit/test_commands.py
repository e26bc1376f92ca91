"""Commands by mail (SPEC §5): the grammar, and the rights applied by the reply planner."""

from __future__ import annotations

import pytest

from gateway.domain import DEFAULT_CATEGORIES, DEFAULT_VOCABULARY, Priority, Status
from gateway.pipeline.commands import parse_commands
from gateway.pipeline.reply_plan import TicketState, plan_reply
from gateway.pipeline.staff_auth import NOT_STAFF, StaffAuth, StaffMethod

STAFF = StaffAuth(staff_address=True, method=StaffMethod.REPLY_ADDRESS)
SPOOFED = StaffAuth(staff_address=True, method=None, reason="ana@smilepass.example is not authenticated")
STAFF_ADDRESSES = ("ana@smilepass.example", "ben@smilepass.example")


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_commands(text, vocabulary=DEFAULT_VOCABULARY, categories=DEFAULT_CATEGORIES)


def effects(text: str) -> list[tuple[str | None, str | None]]:
    return [(c.field.value if c.field else None, c.value) for c in parse(text).commands]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#status resolved", [("status", "Resolved")]),
        ("#status In Progress", [("status", "In Progress")]),
        ("#status waiting on user", [("status", "Waiting on user")]),
        ("#resolved", [("status", "Resolved")]),
        ("#in-progress", [("status", "In Progress")]),
        ("#waiting", [("status", "Waiting on user")]),
        ("#close", [("status", "Closed")]),
        ("#reopen", [("status", "Open")]),
        ("#priority high", [("priority", "High")]),
        ("#queue", [("queue", "all")]),
        ("#queue mine", [("queue", "mine")]),
        ("#Queue ME", [("queue", "mine")]),
        ("#queue everything", [(None, None)]),
        ("#priority ASAP", [("priority", "Urgent")]),
        ("#urgent", [("priority", "Urgent")]),
        ("#category billing", [("category", "Billing & Payments")]),
        ("#category Account & Access", [("category", "Account & Access")]),
        ("#billing", [("category", "Billing & Payments")]),
        ("#Refund.", [("category", "Billing & Payments")]),
        ("#assign me", [("assignee", "me")]),
        ("#assign Ana <ana@smilepass.example>", [("assignee", "ana@smilepass.example")]),
        ("#assign none", [("assignee", "")]),
        ("#unassign", [("assignee", "")]),
        ("#note", [("visibility", "internal")]),
    ],
)
def test_each_command_word(line: str, expected: list[tuple[str, str]]) -> None:
    assert effects(line + "\nThe text.") == expected
    assert parse(line + "\nThe text.").text == "The text."


def test_commands_are_read_only_at_the_top_and_removed_from_the_text() -> None:
    block = parse("\n#priority high\n\n#assign me\nHello Maria,\n#resolved\nthanks")
    assert [c.line for c in block.commands] == ["#priority high", "#assign me"]
    assert block.text == "Hello Maria,\n#resolved\nthanks"


def test_text_that_only_looks_like_a_command_is_text() -> None:
    for text in ("# Heading\n#resolved", "#42 still fails", "Hi #resolved"):
        block = parse(text)
        assert block.commands == () and block.text == text


def test_unknown_and_malformed_commands_are_kept_as_refusable() -> None:
    block = parse("#frobnicate\n#priority sky-high\n#resolved now\nText")
    assert [(c.line, c.understood) for c in block.commands] == [
        ("#frobnicate", False),
        ("#priority sky-high", False),
        ("#resolved now", False),
    ]
    assert "unknown command #frobnicate" in (block.commands[0].problem or "")
    assert block.text == "Text"


def test_note_text_on_the_same_line_is_kept() -> None:
    block = parse("#note customer is on the old app version\nMore.")
    assert block.internal
    assert block.text == "customer is on the old app version\nMore."


# --- rights, through the planner -------------------------------------------------------------------


def ticket(status: Status = Status.OPEN) -> TicketState:
    return TicketState(
        id=7,
        status=status,
        priority=Priority.LOW,
        category="Technical Issues & Bugs",
        assignee=None,
        requester="maria@customer.example",
    )


def plan(text: str, *, sender: str, staff: StaffAuth = NOT_STAFF, status: Status = Status.OPEN):  # type: ignore[no-untyped-def]
    return plan_reply(
        ticket(status),
        sender=sender,
        staff=staff,
        new_text=text,
        vocabulary=DEFAULT_VOCABULARY,
        categories=DEFAULT_CATEGORIES,
        staff_addresses=STAFF_ADDRESSES,
        staff_reply_status=Status.WAITING,
    )


def test_staff_may_use_every_command() -> None:
    done = plan(
        "#urgent\n#billing\n#assign me\n#resolved\nFixed.", sender="ana@smilepass.example", staff=STAFF
    )
    assert done.final.priority is Priority.URGENT
    assert done.final.category == "Billing & Payments"
    assert done.final.assignee == "ana@smilepass.example"
    assert done.final.status is Status.RESOLVED  # the command decides, not the staff-reply rule
    assert done.refused == () and done.receipt
    assert done.visibility == "public" and done.text == "Fixed."
    assert [c.kind for c in done.changes] == [
        "priority_changed",
        "category_changed",
        "assigned",
        "status_changed",
    ]


def test_a_staff_mail_of_commands_only_is_internal_and_changes_status_only_as_commanded() -> None:
    done = plan("#priority high", sender="ana@smilepass.example", staff=STAFF)
    assert done.visibility == "internal"
    assert done.final.status is Status.OPEN
    assert done.receipt


def test_a_staff_note_is_internal_and_takes_an_open_ticket_in_progress() -> None:
    done = plan("#note\nLooks like the CDN.", sender="ana@smilepass.example", staff=STAFF)
    assert done.visibility == "internal" and done.final.status is Status.IN_PROGRESS


def test_staff_can_assign_only_staff() -> None:
    done = plan("#assign eve@evil.example\nHi", sender="ana@smilepass.example", staff=STAFF)
    assert done.final.assignee is None
    assert [r.reason for r in done.refused] == ["eve@evil.example is not a staff address (staff.addresses)"]


def test_the_requester_may_close_or_resolve_but_not_triage() -> None:
    closed = plan("#close\nAll good now, thanks!", sender="Maria@Customer.example", status=Status.WAITING)
    assert closed.role == "requester" and closed.final.status is Status.CLOSED
    resolved = plan("#resolved", sender="maria@customer.example", status=Status.WAITING)
    assert resolved.final.status is Status.RESOLVED
    triage = plan("#urgent\n#assign me\n#note\nplease hurry", sender="maria@customer.example")
    assert triage.final.priority is Priority.LOW and triage.final.assignee is None
    assert triage.visibility == "public"
    assert len(triage.refused) == 3 and not triage.receipt


def test_a_cc_participant_may_use_no_command() -> None:
    done = plan("#close\nthanks", sender="boss@customer.example", status=Status.WAITING)
    assert done.role == "cc"
    assert done.final.status is Status.IN_PROGRESS  # a customer reply, the command refused
    assert [r.reason for r in done.refused] == ["only staff and the ticket's requester may use commands"]


def test_an_unauthenticated_staff_address_is_a_customer_and_is_told_why() -> None:
    done = plan("#resolved\nDone.", sender="ana@smilepass.example", staff=SPOOFED, status=Status.WAITING)
    assert done.role == "cc" and done.visibility == "public"
    assert done.final.status is Status.IN_PROGRESS
    assert [r.reason for r in done.refused] == [SPOOFED.reason]
    assert not done.receipt


def test_setting_the_status_a_ticket_has_is_applied_without_a_change() -> None:
    done = plan("#resolved", sender="ana@smilepass.example", staff=STAFF, status=Status.RESOLVED)
    assert done.changes == () and done.refused == () and done.applied == ("#resolved",)


def test_status_commands_on_a_closed_ticket_are_refused() -> None:
    done = plan("#open\nreopening", sender="ana@smilepass.example", staff=STAFF, status=Status.CLOSED)
    assert done.final.status is Status.CLOSED
    assert "Closed is final" in done.refused[0].reason


def test_a_reopen_from_resolved_is_its_own_event() -> None:
    done = plan("It broke again.", sender="maria@customer.example", status=Status.RESOLVED)
    assert [(c.kind, c.old, c.new) for c in done.changes] == [("reopened", "Resolved", "In Progress")]


def test_a_public_staff_reply_waits_on_the_user() -> None:
    done = plan("Could you send a screenshot?", sender="ana@smilepass.example", staff=STAFF)
    assert done.role == "staff" and done.final.status is Status.WAITING and not done.receipt
