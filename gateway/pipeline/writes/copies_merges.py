"""The writes of SPEC §13 Copies and Merges that a reply (by mail or `tickets update`) makes: the
participants it adds or removes, and a merge, with their events.

A merge closes the merged ticket (the plan already made that change), points it at its target
(`merged_into_id`, which threading follows from then on), and moves its people to the target: its
participants and, where different, its requester, as participants added by `merge SP-42`, so the
requester of a duplicate hears of the answer on the ticket that goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.domain import Address, EventKind, ParsedMail, Role, Status
from gateway.pipeline.commands import CommandBlock, Field, merge_target
from gateway.pipeline.copies import copied_on_reply, why_not_copied
from gateway.pipeline.reply_plan import ReplyPlan
from gateway.store import participants as people_store
from gateway.store import tickets as store
from gateway.store.models import Ticket


def merge_targets(
    session: Session, block: CommandBlock, *, ticket_id: int, prefix: str
) -> dict[str, int | str]:
    """For each `#merge` value in `block`: the ticket id to merge into, or why it cannot be."""
    found: dict[str, int | str] = {}
    for command in block.commands:
        if command.field is not Field.MERGE or command.value is None:
            continue
        number = merge_target(command.value, prefix=prefix)
        ref = f"{prefix}-{number}" if number is not None else command.value
        target = session.get(Ticket, number) if number is not None else None
        if number == ticket_id:
            found[command.value] = "a ticket cannot be merged into itself"
        elif target is None:
            found[command.value] = f"no ticket {ref}"
        elif target.status == Status.CLOSED.value:
            found[command.value] = f"{ref} is Closed" + (" (merged)" if target.merged_into_id else "")
        else:
            found[command.value] = target.id
    return found


def copy_refusal(ticket: Ticket, settings: Settings, ours: GatewayAddresses) -> Callable[[str], str | None]:
    """Why `#cc add ADDRESS` cannot copy ADDRESS onto `ticket`, or None when it can."""

    def refuse(address: str) -> str | None:
        return why_not_copied(address, requester=ticket.requester_address, ours=ours, staff=settings.staff)

    return refuse


def apply_copies(
    session: Session,
    ticket: Ticket,
    plan: ReplyPlan,
    *,
    mail: ParsedMail | None,
    author: Address,
    settings: Settings,
    ours: GatewayAddresses,
    inbox_id: int,
) -> list[dict[str, Any]]:
    """The participants this reply adds (its Cc, from the requester or staff; `#cc add`) or removes
    (`#cc remove`); their events, to be written with the reply's."""
    added: list[Address] = []
    if mail is not None and plan.role in (Role.REQUESTER, Role.STAFF):
        found = copied_on_reply(mail, requester=ticket.requester_address, ours=ours, staff=settings.staff)
        added += people_store.add_participants(session, ticket.id, found, added_by=author.address)
    removed: list[str] = []
    for change in plan.copies:
        if change.add:
            added += people_store.add_participants(
                session, ticket.id, [Address(change.address)], added_by=author.address
            )
        elif people_store.remove_participant(session, ticket.id, change.address):
            removed.append(change.address)
    return [
        *_events(ticket.id, EventKind.PARTICIPANT_ADDED, [p.address for p in added], author, inbox_id),
        *_events(ticket.id, EventKind.PARTICIPANT_REMOVED, removed, author, inbox_id),
    ]


def apply_merge(
    session: Session, ticket: Ticket, target_id: int, *, author: Address, inbox_id: int, prefix: str
) -> list[dict[str, Any]]:
    """Point `ticket` at `target_id` and move its people there; the two tickets' link events."""
    target = session.get_one(Ticket, target_id, with_for_update=True)
    ticket.merged_into_id = target.id
    source_ref, target_ref = f"{prefix}-{ticket.id}", f"{prefix}-{target.id}"
    moving = [Address(ticket.requester_address, ticket.requester_name)]
    moving += [Address(p.address, p.name) for p in people_store.participants(session, ticket.id)]
    keep = [
        person
        for person in moving
        if person.address.strip().lower() != target.requester_address.strip().lower()
    ]
    moved = people_store.add_participants(session, target.id, keep, added_by=f"merge {source_ref}")
    actor = author.address
    rows = [
        store.event_row(ticket_id=ticket.id, kind=EventKind.MERGED_INTO, field="link", new=target_ref,
                        actor=actor, inbox_id=inbox_id),
        store.event_row(ticket_id=target.id, kind=EventKind.MERGED_FROM, field="link", new=source_ref,
                        actor=actor, inbox_id=inbox_id),
    ]  # fmt: skip
    rows += _events(target.id, EventKind.PARTICIPANT_ADDED, [p.address for p in moved], author, inbox_id)
    return rows


def _events(
    ticket_id: int, kind: EventKind, addresses: Sequence[str], author: Address, inbox_id: int
) -> list[dict[str, Any]]:
    return [
        store.event_row(
            ticket_id=ticket_id,
            kind=kind,
            field="participant",
            new=address.lower(),
            actor=author.address,
            inbox_id=inbox_id,
        )
        for address in addresses
    ]
