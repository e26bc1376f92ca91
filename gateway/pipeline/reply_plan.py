"""A reply that joined a ticket (SPEC §4, §5): its role, visibility and text, the commands it carried
applied per the sender's rights, and the status change the lifecycle gives; a pure planner.

Rights (SPEC §5, and the choices where it is silent):
- authenticated staff may use every command;
- the requester may close their own ticket: `#close` → Closed, `#resolved` → Resolved (also as
  `#status closed|resolved`), and change who is copied (`#cc add|remove`); every other command of
  theirs is refused;
- anyone else (a cc participant, an unauthenticated staff address) may use no command.
Refused commands change nothing; each becomes an event with its reason. `#assign` takes `me` or a
configured staff address; `#assign me` from staff assigns the sender.
Visibility: a staff mail with `#note`, or with commands and no text, is internal (nothing goes to the
requester); everything else is public. Status: an applied status command decides; without one, the
lifecycle table does (staff public reply, staff internal note, customer reply).
`#merge SP-41` (staff) closes the ticket as merged into SP-41; its target was looked up by the caller
(`merge_targets`: the value written → the ticket id, or why it cannot be merged into).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.domain import EventKind, Priority, Role, Status, TagVocabulary, Visibility
from gateway.pipeline.commands import (
    ASSIGN_ME,
    CC_ADD,
    Command,
    CommandBlock,
    Field,
    parse_commands,
)
from gateway.pipeline.lifecycle import Transition, Trigger, next_status, set_status
from gateway.pipeline.staff_auth import StaffAuth

REQUESTER_MAY = (
    "a requester may only close their own ticket (#close or #resolved) and change who is copied "
    "(#cc); priority and category come from the tags of the mail that opened it"
)
NOBODY_ELSE_MAY = "only staff and the ticket's requester may use commands"


@dataclass(frozen=True)
class TicketState:
    """The fields of a ticket that a reply can change, and who asked."""

    id: int
    status: Status
    priority: Priority
    category: str
    assignee: str | None
    requester: str


@dataclass(frozen=True)
class Change:
    """One field change, for the ticket row and its event."""

    kind: EventKind  # STATUS_CHANGED, REOPENED, PRIORITY_CHANGED, CATEGORY_CHANGED or ASSIGNED
    field: str
    old: str | None
    new: str | None
    line: str | None  # the command line that asked for it; None for the lifecycle's own change


@dataclass(frozen=True)
class Refusal:
    line: str
    field: str | None
    reason: str


@dataclass(frozen=True)
class CopyChange:
    """`#cc add` (`add` True) or `#cc remove` of one address, as the command line asked."""

    add: bool
    address: str
    line: str


@dataclass(frozen=True)
class ReplyPlan:
    role: Role
    visibility: Visibility
    text: str  # the new text, command lines removed
    changes: tuple[Change, ...]
    refused: tuple[Refusal, ...]
    applied: tuple[str, ...]  # command lines applied (or already true), as written
    receipt: bool  # a staff sender whose mail carried commands gets a command_result
    final: TicketState  # the ticket after every change
    queue: str | None = None  # `#queue` (QUEUE_ALL) or `#queue mine` (QUEUE_MINE): shown in the receipt
    copies: tuple[CopyChange, ...] = ()  # `#cc add|remove`, in order
    merged_into: int | None = None  # `#merge`: the ticket this one was merged into (it is now Closed)

    @property
    def status_changes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.field == Field.STATUS.value)


def role_of(sender: str, *, requester: str, staff: StaffAuth) -> Role:
    if staff.is_staff:
        return Role.STAFF
    if sender.strip().lower() == requester.strip().lower():
        return Role.REQUESTER
    return Role.CC


def plan_reply(
    ticket: TicketState,
    *,
    sender: str,
    staff: StaffAuth,
    new_text: str,
    vocabulary: TagVocabulary,
    categories: Sequence[str],
    staff_addresses: Sequence[str],
    staff_reply_status: Status,
    merge_targets: Mapping[str, int | str] | None = None,
    refuse_copy: Callable[[str], str | None] | None = None,
) -> ReplyPlan:
    """What the reply `new_text` (already trimmed of quotes) from `sender` does to `ticket`."""
    block = parse_commands(new_text, vocabulary=vocabulary, categories=categories)
    return plan_commands(
        ticket,
        block,
        sender=sender,
        staff=staff,
        staff_addresses=staff_addresses,
        staff_reply_status=staff_reply_status,
        merge_targets=merge_targets,
        refuse_copy=refuse_copy,
    )


def plan_commands(
    ticket: TicketState,
    block: CommandBlock,
    *,
    sender: str,
    staff: StaffAuth,
    staff_addresses: Sequence[str],
    staff_reply_status: Status,
    merge_targets: Mapping[str, int | str] | None = None,
    refuse_copy: Callable[[str], str | None] | None = None,
) -> ReplyPlan:
    """What `block` (commands already understood, and the new text) from `sender` does to `ticket`.

    A mail reaches this through `plan_reply`; `ticketgate tickets update` builds its block from its
    options, so its text is never read for commands, and both are held to the same rights and table.
    `refuse_copy` says why an address cannot be copied (`#cc add`), or None when it can.
    """
    role = role_of(sender, requester=ticket.requester, staff=staff)
    state = ticket
    changes: list[Change] = []
    refused: list[Refusal] = []
    applied: list[str] = []
    status_commanded = False
    internal = False
    queue: str | None = None
    copies: list[CopyChange] = []
    merged_into: int | None = None

    for command in block.commands:
        problem = _not_allowed(command, role=role, staff=staff)
        if problem is not None:
            refused.append(Refusal(command.line, command.field.value if command.field else None, problem))
            continue
        assert command.field is not None and command.value is not None
        if command.field is Field.VISIBILITY:
            internal = command.value == Visibility.INTERNAL
            applied.append(command.line)
            continue
        if command.field is Field.QUEUE:
            queue = command.value
            applied.append(command.line)
            continue
        if command.field is Field.CC:
            op, _, address = command.value.partition(" ")
            problem = refuse_copy(address) if refuse_copy is not None and op == CC_ADD else None
            if problem is not None:
                refused.append(Refusal(command.line, Field.CC.value, problem))
                continue
            copies.append(CopyChange(op == CC_ADD, address, command.line))
            applied.append(command.line)
            continue
        if command.field is Field.MERGE:
            target = (merge_targets or {}).get(command.value, f"no ticket {command.value}")
            if isinstance(target, str):
                refused.append(Refusal(command.line, Field.MERGE.value, target))
                continue
            if state.status is Status.CLOSED:  # merged already, or closed: Closed is final
                refused.append(Refusal(command.line, Field.MERGE.value, "this ticket is Closed"))
                continue
            transition = set_status(state.status, Status.CLOSED)
            status_commanded = True
            state = _apply_status(state, transition, command.line, changes)
            merged_into = target
            applied.append(command.line)
            continue
        if command.field is Field.STATUS:
            transition = set_status(state.status, Status(command.value))
            if transition.refused is not None:
                refused.append(Refusal(command.line, Field.STATUS.value, transition.refused))
                continue
            status_commanded = True
            state = _apply_status(state, transition, command.line, changes)
        elif command.field is Field.ASSIGNEE:
            assignee = _assignee(command.value, sender=sender, staff_addresses=staff_addresses)
            if isinstance(assignee, _Problem):
                refused.append(Refusal(command.line, Field.ASSIGNEE.value, assignee.reason))
                continue
            if assignee != state.assignee:
                changes.append(Change(EventKind.ASSIGNED, "assignee", state.assignee, assignee, command.line))
                state = replace(state, assignee=assignee)
        elif command.field is Field.PRIORITY:
            priority = Priority(command.value)
            if priority is not state.priority:
                changes.append(
                    Change(
                        EventKind.PRIORITY_CHANGED,
                        "priority",
                        state.priority.value,
                        priority.value,
                        command.line,
                    )
                )
                state = replace(state, priority=priority)
        elif command.field is Field.CATEGORY and command.value != state.category:
            changes.append(
                Change(EventKind.CATEGORY_CHANGED, "category", state.category, command.value, command.line)
            )
            state = replace(state, category=command.value)
        applied.append(command.line)

    text = block.text.strip()
    is_staff = role is Role.STAFF
    visibility = Visibility.INTERNAL if is_staff and (internal or not text) else Visibility.PUBLIC
    if not status_commanded:
        trigger = _implicit_trigger(role=role, text=text, visibility=visibility)
        if trigger is not None:
            transition = next_status(state.status, trigger, staff_reply_status=staff_reply_status)
            state = _apply_status(state, transition, None, changes)

    return ReplyPlan(
        role=role,
        visibility=visibility,
        text=text,
        changes=tuple(changes),
        refused=tuple(refused),
        applied=tuple(dict.fromkeys(applied)),
        receipt=is_staff and bool(block.commands),
        final=state,
        queue=queue,
        copies=tuple(copies),
        merged_into=merged_into,
    )


def _implicit_trigger(*, role: Role, text: str, visibility: Visibility) -> Trigger | None:
    """The lifecycle's event for a reply without an applied status command."""
    if role is not Role.STAFF:
        return Trigger.CUSTOMER_REPLY
    if not text:  # commands only: the status changes only as commanded
        return None
    return Trigger.STAFF_REPLY if visibility is Visibility.PUBLIC else Trigger.STAFF_ACTION


def _apply_status(
    state: TicketState, transition: Transition, line: str | None, changes: list[Change]
) -> TicketState:
    if not transition.changed:
        return state
    kind = EventKind.REOPENED if transition.is_reopen else EventKind.STATUS_CHANGED
    changes.append(Change(kind, "status", transition.old.value, transition.new.value, line))
    return replace(state, status=transition.new)


def _not_allowed(command: Command, *, role: Role, staff: StaffAuth) -> str | None:
    """Why `command` is refused for this sender, or None when it may be applied."""
    if not command.understood:
        return command.problem or "not understood"
    if role is Role.STAFF:
        return None
    if role is Role.REQUESTER:
        if command.field is Field.STATUS and command.value in (Status.RESOLVED.value, Status.CLOSED.value):
            return None
        if command.field is Field.CC:
            return None
        return REQUESTER_MAY
    if staff.staff_address:
        return staff.reason or NOBODY_ELSE_MAY
    return NOBODY_ELSE_MAY


@dataclass(frozen=True)
class _Problem:
    reason: str


def _assignee(value: str, *, sender: str, staff_addresses: Sequence[str]) -> str | _Problem | None:
    if not value:
        return None
    wanted = sender.strip().lower() if value == ASSIGN_ME else value.strip().lower()
    known = {address.strip().lower() for address in staff_addresses}
    if wanted not in known:
        return _Problem(f"{wanted} is not a staff address (staff.addresses)")
    return wanted
