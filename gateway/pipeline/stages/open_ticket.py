"""Stage open_ticket: everything else opens a ticket (automated mail too, it just gets no
acknowledgement); what the ticket says is planned by pipeline/new_ticket_plan.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.domain import EventKind, Role, TicketOpened, Visibility
from gateway.mail.requester import find_requester
from gateway.pipeline.copies import copied_on_opening
from gateway.pipeline.new_ticket_plan import UNKNOWN_SENDER, IntakeDefaults, NewTicket, plan_new_ticket
from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Threaded
from gateway.pipeline.writes.collision import record_collision
from gateway.pipeline.writes.files import store_files
from gateway.store import participants as people_store
from gateway.store import tickets as store
from gateway.store.inbox import clip_message_id


def open_ticket(mail: Threaded, run: MailRun) -> Decision:
    """The last stage: it always decides."""
    return open_new_ticket(mail, run)[1]


def open_new_ticket(
    mail: Threaded,
    run: MailRun,
    *,
    more_events: Sequence[Event] = (),
    acknowledge: bool | None = None,
    not_acknowledged_because: str = "",
) -> tuple[int, Decision]:
    """The ticket opened (its id, for check_forged_sender's event) and the decision; the keywords
    are open_planned_ticket's."""
    parsed, item, deps = mail.mail, run.item, run.deps
    defaults = deps.intake_defaults.get(item.envelope.source, IntakeDefaults())
    plan = plan_new_ticket(parsed, item.envelope, settings=deps.settings, ours=deps.ours, defaults=defaults)
    unknown: list[Event] = []
    if plan.requester.address == UNKNOWN_SENDER:
        # SPEC §1: nobody named an address; staff see why on the ticket.
        reason = find_requester(parsed, item.envelope).reason
        unknown.append((EventKind.REQUESTER_UNKNOWN, "ticketgate", "requester", reason))
    return open_planned_ticket(
        mail,
        run,
        plan,
        more_events=(*unknown, *more_events),
        acknowledge=acknowledge,
        not_acknowledged_because=not_acknowledged_because,
    )


# An event written with the ticket: (kind, actor, field, new).
Event = tuple[EventKind, str, str, str]


def open_planned_ticket(
    mail: Threaded,
    run: MailRun,
    plan: NewTicket,
    *,
    more_events: Sequence[Event] = (),
    acknowledge: bool | None = None,
    not_acknowledged_because: str = "",
) -> tuple[int, Decision]:
    """Open the ticket `plan` says, its first message being `mail.mail` (its Message-ID, subject and
    files); `more_events` are written after `created`. `acknowledge` None: unless the mail is automated.

    A web form's mail and a staff forward (SPEC §13) open their tickets through here with plans of
    their own (another requester, title and description), so every ticket is opened the same way."""
    parsed, item = mail.mail, run.item
    routing = mail.routing  # a rule's priority and category win over subject tags (SPEC §14)
    ticket = store.create_ticket(
        run.session,
        title=plan.title,
        description=plan.description,
        priority=routing.priority or plan.priority,
        category=routing.category or plan.category,
        tier=plan.tier,
        requester_address=plan.requester.address,
        requester_name=plan.requester.name,
        created_at=item.received_at,
        follow_up_of_id=mail.thread.follow_up_of,
        possible_follow_up_of_id=mail.thread.possible_follow_up_of,
        assignee=routing.assign,
    )
    message_db_id = store.insert_message(
        run.session,
        ticket_id=ticket.id,
        inbox_id=item.id,
        message_id=parsed.message_id,
        kind="mail",
        author_address=plan.requester.address,
        author_name=plan.requester.name,
        role=Role.REQUESTER,
        visibility=Visibility.PUBLIC,
        subject=parsed.subject,
        text=plan.text,
        threaded_by="new",
    )
    actor = plan.requester.address
    events: list[dict[str, Any]] = []  # written together, in this order

    def event(kind: EventKind, by: str, *, field: str, new: str) -> None:
        events.append(
            store.event_row(ticket_id=ticket.id, kind=kind, field=field, new=new, actor=by, inbox_id=item.id)
        )

    event(EventKind.CREATED, actor, field="status", new=ticket.status)
    for kind, by, field, new in more_events:
        event(kind, by, field=field, new=new)
    for kind, link in _follow_up_links(mail, run):
        event(kind, actor, field="link", new=link)
    for tag in plan.tags:
        event(EventKind.TAG, actor, field="tag", new=tag)
    for fired in routing.fired:
        event(EventKind.RULE, "ticketgate", field="rule", new=fired.name)
    if routing.assign is not None:
        event(EventKind.ASSIGNED, f"rule {routing.assign_by}", field="assignee", new=routing.assign)
    for tag in plan.address_tags:  # support+billing@: the tag came from the address written to
        event(EventKind.TAG, actor, field="sub-address", new=tag)
    # SPEC §13 Copies: whoever else the opening mail was sent to is on the ticket from the start,
    # added by whoever wrote it (the requester; a staff member who forwarded; a web form).
    deps, writer = run.deps, mail.sender.address
    found = copied_on_opening(
        parsed, requester=plan.requester.address, ours=deps.ours, staff=deps.settings.staff
    )
    copied = people_store.add_participants(run.session, ticket.id, found, added_by=writer)
    for person in copied:
        event(EventKind.PARTICIPANT_ADDED, writer, field="participant", new=person.address)
    store.add_events(run.session, events)
    record_collision(run, mail, ticket_id=ticket.id)
    files = store_files(run, mail, sender=mail.sender, ticket_id=ticket.id, message_db_id=message_db_id)
    acknowledged = not mail.classification.suppress_notifications if acknowledge is None else acknowledge
    opened = TicketOpened(
        ticket_id=ticket.id,
        message_db_id=message_db_id,
        message_id=clip_message_id(parsed.message_id),  # as stored
        requester=plan.requester,
        acknowledge=acknowledged and routing.silenced_by is None,
        tags=plan.tags,
        has_screenshot=bool(files.screenshots),
        text=plan.text,
        not_acknowledged_because=not_acknowledged_because
        or (f"rule {routing.silenced_by!r} says acknowledge = false" if routing.silenced_by else ""),
        copied=tuple(copied),
        has_files=bool(files.screenshots or files.attachments),
    )
    return ticket.id, Decision(Outcome.TICKET, ticket.id, f"new ticket {ticket.id}", (opened,))


def _follow_up_links(mail: Threaded, run: MailRun) -> list[tuple[EventKind, str]]:
    """A reply to a Closed ticket is its follow-up; a stranger's reference only a possible one (SPEC §4).

    The link itself is a column of the new ticket (set by `create_ticket`); these are its events."""
    match = mail.thread
    prefix = run.deps.settings.gateway.ticket_prefix
    how = match.link_by.value if match.link_by is not None else "new"
    links = (
        (EventKind.FOLLOW_UP_OF, match.follow_up_of),
        (EventKind.POSSIBLE_FOLLOW_UP_OF, match.possible_follow_up_of),
    )
    return [(kind, f"{prefix}-{linked} ({how})") for kind, linked in links if linked is not None]
