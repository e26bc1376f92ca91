"""Values the notification planner and its kinds (gateway/notify/kinds/) share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.domain import Address
from gateway.notify.message import UnsafeAddress, safe_address


@dataclass(frozen=True)
class Known:
    """What the caller has just written in this transaction, so the planner need not read it back.

    Passed explicitly by whoever wrote it (not kept in a cache of the store's, which a savepoint
    rolled back under it would leave wrong). `opening`: `(row id, Message-ID as stored)` of the
    message that opened the ticket in this mail, when it has a Message-ID: the first of the
    ticket's thread whatever this mail adds after it (a forward's note). `deliverable`: the
    addresses (as `outbox.undeliverable_key` keys them) whose undeliverable mark this mail has just
    cleared. `without_files`: row ids of messages this mail stored with no screenshot and no
    attachment (most mail), so a staff notification about one does not read back its files (two
    statements and their ORM rows per staff mail)."""

    opening: tuple[int, str] | None = None
    deliverable: frozenset[str] = frozenset()
    without_files: frozenset[int] = frozenset()


NOTHING_KNOWN = Known()


def fileless(message_db_id: int, has_files: bool) -> frozenset[int]:
    """`Known.without_files` for a happening about message `message_db_id`."""
    return frozenset() if has_files else frozenset({message_db_id})


@dataclass(frozen=True)
class Shown:
    """The To and Cc a notification's headers show, whoever the copy is delivered to: a staff reply
    to the requester with the participants in Cc reaches each of them as its own copy (its own bounce
    address, so a bounce names who failed), and each copy shows the same To and Cc (SPEC §13)."""

    to: Address
    cc: tuple[Address, ...]

    def context(self) -> dict[str, Any]:
        """For the row's `_mail`; an address that cannot be one header address is left out."""
        return {
            "to_header": [self.to.address, self.to.name] if _header_safe(self.to) else None,
            "cc": [[person.address, person.name] for person in self.cc if _header_safe(person)],
        }


def _header_safe(person: Address) -> bool:
    try:
        safe_address(person.address)
    except UnsafeAddress:
        return False
    return True
