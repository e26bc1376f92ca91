"""The status lifecycle (SPEC §5) as one table: state × trigger → state; a pure function reads it.

Every status change a mail, a command or the scheduler can cause is a cell of `TABLE`. A cell is
a status, `SAME` (no change), `STAFF_REPLY_STATUS` (the configured `tickets.staff_reply_status`,
but never left `Open`: staff's first action on an Open ticket moves it at least to In Progress),
or `REFUSED` (`Closed` is final). Setting the status a ticket already has is no change, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from gateway.domain import Status


class Trigger(StrEnum):
    """What happened to a ticket, as far as its status is concerned."""

    STAFF_REPLY = "staff reply"  # authenticated staff, public text, no status command
    STAFF_ACTION = "staff action"  # authenticated staff, internal note with text, no status command
    CUSTOMER_REPLY = "customer reply"  # requester or cc (or an unauthenticated staff address)
    AUTO_REPLY = "auto-reply"  # out-of-office and friends: recorded, never a change
    AUTO_CLOSE = "auto-close"  # the scheduler: Resolved for tickets.auto_close_days
    SET_OPEN = "#status open"
    SET_IN_PROGRESS = "#status in-progress"
    SET_WAITING = "#status waiting"
    SET_RESOLVED = "#status resolved"
    SET_CLOSED = "#status closed"


class _Cell(StrEnum):
    SAME = "same"
    STAFF_REPLY_STATUS = "staff_reply_status"
    REFUSED = "refused"


SAME: Final = _Cell.SAME
STAFF_REPLY_STATUS: Final = _Cell.STAFF_REPLY_STATUS
REFUSED: Final = _Cell.REFUSED

# Short names, so the table reads as a grid.
_K, _S, _X = SAME, STAFF_REPLY_STATUS, REFUSED
OPN, PRG, WAI, RES, CLO = Status.OPEN, Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED, Status.CLOSED
_COLUMNS: Final = (OPN, PRG, WAI, RES, CLO)

# _K: no change; _S: tickets.staff_reply_status (an Open ticket at least to In Progress); _X: refused.
# fmt: off
#                              Open  In Progress  Waiting  Resolved  Closed
_ROWS: Final[dict[Trigger, tuple[Status | _Cell, ...]]] = {
    Trigger.STAFF_REPLY:      (_S,   _S,          _S,      _S,       _X),
    Trigger.STAFF_ACTION:     (PRG,  _K,          _K,      _K,       _X),
    Trigger.CUSTOMER_REPLY:   (_K,   _K,          PRG,     PRG,      _X),
    Trigger.AUTO_REPLY:       (_K,   _K,          _K,      _K,       _K),
    Trigger.AUTO_CLOSE:       (_K,   _K,          _K,      CLO,      _K),
    Trigger.SET_OPEN:         (OPN,  OPN,         OPN,     OPN,      _X),
    Trigger.SET_IN_PROGRESS:  (PRG,  PRG,         PRG,     PRG,      _X),
    Trigger.SET_WAITING:      (WAI,  WAI,         WAI,     WAI,      _X),
    Trigger.SET_RESOLVED:     (RES,  RES,         RES,     RES,      _X),
    Trigger.SET_CLOSED:       (CLO,  CLO,         CLO,     CLO,      _X),
}
# fmt: on

TABLE: Final[dict[tuple[Status, Trigger], Status | _Cell]] = {
    (status, trigger): cell
    for trigger, cells in _ROWS.items()
    for status, cell in zip(_COLUMNS, cells, strict=True)
}

SET_STATUS: Final[dict[Status, Trigger]] = {
    OPN: Trigger.SET_OPEN,
    PRG: Trigger.SET_IN_PROGRESS,
    WAI: Trigger.SET_WAITING,
    RES: Trigger.SET_RESOLVED,
    CLO: Trigger.SET_CLOSED,
}

CLOSED_IS_FINAL = "the ticket is Closed, and Closed is final (a reply opens a follow-up ticket)"


@dataclass(frozen=True)
class Transition:
    """The outcome of a trigger: the old and new status, and the reason when it was refused."""

    old: Status
    new: Status
    refused: str | None = None

    @property
    def changed(self) -> bool:
        return self.refused is None and self.old is not self.new

    @property
    def is_reopen(self) -> bool:
        """A Resolved ticket that went back to work (SPEC §5: an event of its own)."""
        return self.changed and self.old is Status.RESOLVED and self.new is not Status.CLOSED


def next_status(
    current: Status, trigger: Trigger, *, staff_reply_status: Status = Status.WAITING
) -> Transition:
    """What `trigger` does to a ticket in status `current` (the one place that reads the table)."""
    cell = TABLE[(current, trigger)]
    if cell is REFUSED:
        return Transition(current, current, CLOSED_IS_FINAL)
    if cell is SAME:
        return Transition(current, current)
    if cell is STAFF_REPLY_STATUS:
        target = staff_reply_status
        if current is Status.OPEN and target is Status.OPEN:  # staff's first action: at least In Progress
            target = Status.IN_PROGRESS
        return Transition(current, target)
    assert isinstance(cell, Status)
    return Transition(current, cell)


def set_status(current: Status, wanted: Status) -> Transition:
    """A status command: from any status but Closed to any other; the same status is no change."""
    return next_status(current, SET_STATUS[wanted])
