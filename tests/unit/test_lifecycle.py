"""The status lifecycle table (SPEC §5): every cell the spec names, Closed final, same status no change."""

from __future__ import annotations

import pytest

from gateway.domain import Status
from gateway.pipeline.lifecycle import CLOSED_IS_FINAL, TABLE, Trigger, next_status, set_status

NOT_CLOSED = [s for s in Status if s is not Status.CLOSED]


def test_the_table_has_a_cell_for_every_status_and_trigger() -> None:
    assert set(TABLE) == {(status, trigger) for status in Status for trigger in Trigger}


@pytest.mark.parametrize("current", NOT_CLOSED)
def test_a_public_staff_reply_moves_to_waiting_on_user(current: Status) -> None:
    assert next_status(current, Trigger.STAFF_REPLY).new is Status.WAITING


def test_the_staff_reply_status_comes_from_config() -> None:
    moved = next_status(Status.WAITING, Trigger.STAFF_REPLY, staff_reply_status=Status.IN_PROGRESS)
    assert moved.new is Status.IN_PROGRESS


def test_staffs_first_action_on_an_open_ticket_is_at_least_in_progress() -> None:
    assert next_status(Status.OPEN, Trigger.STAFF_ACTION).new is Status.IN_PROGRESS
    # even when config says a staff reply leaves the status Open
    assert next_status(Status.OPEN, Trigger.STAFF_REPLY, staff_reply_status=Status.OPEN).new is (
        Status.IN_PROGRESS
    )
    assert not next_status(Status.WAITING, Trigger.STAFF_ACTION).changed


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (Status.OPEN, Status.OPEN),
        (Status.IN_PROGRESS, Status.IN_PROGRESS),
        (Status.WAITING, Status.IN_PROGRESS),
        (Status.RESOLVED, Status.IN_PROGRESS),
    ],
)
def test_a_customer_reply(current: Status, expected: Status) -> None:
    assert next_status(current, Trigger.CUSTOMER_REPLY).new is expected


def test_a_customer_reply_to_a_resolved_ticket_is_a_reopen() -> None:
    assert next_status(Status.RESOLVED, Trigger.CUSTOMER_REPLY).is_reopen
    assert not next_status(Status.WAITING, Trigger.CUSTOMER_REPLY).is_reopen


@pytest.mark.parametrize("current", list(Status))
def test_an_auto_reply_never_changes_the_status(current: Status) -> None:
    transition = next_status(current, Trigger.AUTO_REPLY)
    assert not transition.changed and transition.refused is None


def test_auto_close_closes_only_resolved_tickets() -> None:
    assert next_status(Status.RESOLVED, Trigger.AUTO_CLOSE).new is Status.CLOSED
    for current in (Status.OPEN, Status.IN_PROGRESS, Status.WAITING):
        assert not next_status(current, Trigger.AUTO_CLOSE).changed


@pytest.mark.parametrize("current", NOT_CLOSED)
@pytest.mark.parametrize("wanted", list(Status))
def test_any_status_but_closed_may_go_to_any_other(current: Status, wanted: Status) -> None:
    transition = set_status(current, wanted)
    assert transition.refused is None
    assert transition.new is wanted
    assert transition.changed is (current is not wanted)


@pytest.mark.parametrize("wanted", list(Status))
def test_closed_is_final(wanted: Status) -> None:
    transition = set_status(Status.CLOSED, wanted)
    assert transition.refused == CLOSED_IS_FINAL
    assert transition.new is Status.CLOSED and not transition.changed
    for trigger in (Trigger.STAFF_REPLY, Trigger.CUSTOMER_REPLY, Trigger.STAFF_ACTION):
        assert next_status(Status.CLOSED, trigger).refused == CLOSED_IS_FINAL
