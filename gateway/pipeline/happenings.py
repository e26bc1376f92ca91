"""What processing a mail changed, as typed values: the stages record them, notifications read them.

Stages never send or queue mail themselves; they append happenings to the mail's context, and the
notification planner turns them into outbox rows in the same transaction. So "what happened" and
"who is told" stay separate, and loop protection is applied in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.domain import Address


@dataclass(frozen=True)
class TicketOpened:
    ticket_id: int
    message_db_id: int
    requester: Address
    acknowledge: bool  # False for automated mail and loop signals: no ticket_created to the sender
    tags: tuple[str, ...]
    has_screenshot: bool
    text: str  # the cleaned first message, so the acknowledgement can say what would help


@dataclass(frozen=True)
class ReplyAdded:
    ticket_id: int
    message_db_id: int
    author: Address
    role: str  # requester, staff, cc
    visibility: str  # public, internal
    notify: bool  # False when loop signals forbid answering this mail


@dataclass(frozen=True)
class StatusChanged:
    ticket_id: int
    old: str
    new: str
    actor: str


@dataclass(frozen=True)
class CommandResult:
    """A staff mail carried commands: the receipt lists what was applied and what was refused."""

    ticket_id: int
    staff: Address
    applied: tuple[str, ...]  # the command lines applied, as written
    refused: tuple[tuple[str, str], ...]  # (line, reason)


@dataclass(frozen=True)
class BounceReceived:
    inbox_id: int
    verp_detail: str | None
    recipients: tuple[str, ...]
    permanent: bool
    status: str | None
    diagnostic: str | None
    # Message-IDs of the returned mail, for a bounce that did not come back to a VERP address.
    message_ids: tuple[str, ...] = ()


Happening = TicketOpened | ReplyAdded | StatusChanged | CommandResult | BounceReceived
