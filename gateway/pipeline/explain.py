"""`ticketgate explain` and `inbox explain` (SPEC §14): a mail through the very stages processing
runs (the STAGES table of processor.py, the same stage functions), against the current config and
database, keeping nothing.

How nothing is kept:
- the stages and the notification planner run in one transaction that is always rolled back; a mail
  read from a file gets an inbox row inside it, so what the stages write refers to a real row;
- blobs (screenshots, attachments) go to a `DryBlobStore`, which keeps them in memory: a blob
  folder is no transaction;
- nothing is sent: the planner only queues outbox rows, which are read back and rolled back;
- on SQLite the transaction holds the write lock from its BEGIN (as every writer's does), but, as
  in processing, the stages that need no database (parse_mail) run before it begins, so intake
  waits no longer than it does for one processed mail.
On PostgreSQL, sequences are not transactional: a row explain inserts uses up its id (a ticket
number, an inbox id) as a mail whose processing fails and is retried does; ids stay unique.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.domain import Address, Envelope, ParsedMail
from gateway.errors import NotAMailError, ProcessingError, TransientError
from gateway.mail.quotes import trim_reply
from gateway.mail.requester import Requester, find_requester
from gateway.pipeline.explain_steps import Step, describe, fired_rules
from gateway.pipeline.processor import _NO_TRANSACTION, OUTSIDE_TRANSACTION, STAGES
from gateway.pipeline.stage_values import (
    Decision,
    MailRun,
    Outcome,
    Parsed,
    ProcessorDeps,
    Stage,
    Threaded,
)
from gateway.store.db import database_unavailable
from gateway.store.dry_run import (
    Queued,
    add_explained_row,
    marks,
    numbers_kept,
    queued_after,
    set_aside_seen,
    skipped_after,
    stored_text_after,
)
from gateway.store.inbox import ClaimedItem
from gateway.store.inbox_outcomes import get_entry
from gateway.store.models import Ticket

__all__ = ["Explanation", "Step", "explain_file", "explain_inbox"]


@dataclass(frozen=True)
class Explanation:
    """What processing would make of the mail now, and why, stage by stage."""

    outcome: str
    ticket_id: int | None
    requester: Requester | None  # None when the mail could not be parsed
    title: str | None
    priority: str | None
    category: str | None
    rules: tuple[str, ...]  # the `[[rules]]` that fired
    steps: tuple[Step, ...]
    text: str | None  # the new text the conversation would get (or the mail's new part)
    trimmed: str  # what was cut from it: quotes, signature, boilerplate
    notifications: tuple[Queued, ...]
    not_sent: tuple[str, ...] = ()  # notifications the planner skipped, and why
    error: Exception | None = None  # why the mail would be quarantined (NotAMailError: not a mail)


def explain_file(
    deps: ProcessorDeps,
    raw: bytes,
    envelope: Envelope,
    *,
    stages: Sequence[tuple[str, Stage]] = STAGES,
) -> Explanation:
    """A mail that is not in the inbox: as if it arrived now with `envelope`."""
    item = ClaimedItem(id=0, raw=raw, envelope=envelope, attempts=0, received_at=datetime.now(UTC))
    return _explain(deps, item, stages, in_inbox=False, leading=())


def explain_inbox(
    deps: ProcessorDeps, inbox_id: int, *, stages: Sequence[tuple[str, Stage]] = STAGES
) -> Explanation | None:
    """A mail of the inbox, as it would be processed now (None: no such inbox row). Its own earlier
    result is set aside for the duplicate check, else it would only be a duplicate of itself."""
    with deps.sessions() as session:
        try:
            found = get_entry(session, inbox_id)
        except SQLAlchemyError as exc:
            raise database_unavailable(exc) from exc
    if found is None:
        return None
    entry, raw = found
    item = ClaimedItem(
        id=entry.id,
        raw=raw,
        envelope=Envelope(entry.envelope_from, entry.envelope_to, entry.source),
        attempts=entry.attempts,
        received_at=entry.received_at,
        released=entry.released_at is not None,
    )
    ticket = f", ticket {entry.ticket_id}" if entry.ticket_id is not None else ""
    leading = (
        Step(
            "inbox",
            f"inbox {entry.id}, now {entry.outcome}{ticket}",
            "explained as if it arrived now; its own earlier record is set aside for the duplicate check"
            + ("; it was released, so spam verdicts, the flood limit and drop rules do not apply"
               if item.released else ""),
        ),
    )  # fmt: skip
    return _explain(deps, item, stages, in_inbox=True, leading=leading)


def _explain(
    deps: ProcessorDeps,
    item: ClaimedItem,
    stages: Sequence[tuple[str, Stage]],
    *,
    in_inbox: bool,
    leading: tuple[Step, ...],
) -> Explanation:
    outside = 0
    while outside < len(stages) and stages[outside][0] in OUTSIDE_TRANSACTION:
        outside += 1
    steps = list(leading)
    walk = _Walk(steps)
    value: object = item
    decision = walk.run(value, MailRun(item, _NO_TRANSACTION, deps), stages[:outside])
    value = walk.value
    if walk.error is not None:
        return _failed(walk, item)
    session = deps.sessions()
    try:
        session.begin()
        with numbers_kept(session):
            return _in_transaction(deps, walk, item, value, decision, session, stages[outside:], in_inbox)
    except SQLAlchemyError as exc:
        raise database_unavailable(exc) from exc
    finally:
        session.rollback()
        session.close()


def _in_transaction(
    deps: ProcessorDeps,
    walk: _Walk,
    item: ClaimedItem,
    value: object,
    decision: Decision | None,
    session: Session,
    stages: Sequence[tuple[str, Stage]],
    in_inbox: bool,
) -> Explanation:
    """The stages that need the database, the planner, and what they left, before the rollback."""
    if in_inbox:
        set_aside_seen(session, item.id)
    else:
        item = dataclasses.replace(item, id=add_explained_row(session, item.raw, item.envelope))
    before = marks(session)
    run = MailRun(item, session, deps)
    if decision is None:
        decision = walk.run(value, run, stages)
        value = walk.value
    if walk.error is not None:
        return _failed(walk, item)
    if decision is None:
        raise AssertionError("the last stage always decides")
    if deps.notifier is not None and decision.happenings:
        deps.notifier.plan(session, decision.happenings, inbox_id=item.id)
    queued = tuple(queued_after(session, before, item.id))
    not_sent = tuple(skipped_after(session, before, item.id))
    walk.steps.append(_notifications_step(queued, not_sent))
    ticket = session.get(Ticket, decision.ticket_id) if decision.ticket_id is not None else None
    stored = stored_text_after(session, before, item.id)
    return _explained(walk, run, decision, ticket, stored, queued, not_sent)


class _Walk:
    """Runs stages as the processor's `_step` does, describing each one as it goes; an exception
    a stage raises is kept (the mail would be quarantined), but a transient fault is raised."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.value: object = None
        self.mail: ParsedMail | None = None
        self.error: Exception | None = None
        self.failed_stage: str | None = None

    def run(self, value: object, run: MailRun, stages: Sequence[tuple[str, Stage]]) -> Decision | None:
        self.value = value
        for name, stage in stages:
            try:
                out = stage(value, run)
            except TransientError:
                raise
            except OSError as exc:  # the blob store's disk: processing would try again later
                raise TransientError(f"blob store: {exc}") from exc
            except Exception as exc:  # what the processor would quarantine: said, not raised
                self.error, self.failed_stage = exc, name
                self.steps.append(Step(name, "quarantine", quarantine_reason(exc)))
                return None
            self.steps.append(describe(name, value, out, run))
            if isinstance(out, Decision):
                return out
            value = self.value = out
            if isinstance(value, Parsed):
                self.mail = value.mail
        return None


def quarantine_reason(exc: Exception) -> str:
    """The reason the processor's boundary (Processor._failure) would give the quarantined mail."""
    if isinstance(exc, NotAMailError):
        return f"not a mail: {exc}"
    if isinstance(exc, ProcessingError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _failed(walk: _Walk, item: ClaimedItem) -> Explanation:
    mail = walk.mail
    trimmed = trim_reply(mail.text, html=mail.html) if mail is not None else None
    return Explanation(
        outcome="quarantine",
        ticket_id=None,
        requester=find_requester(mail, item.envelope) if mail is not None else None,
        title=None,
        priority=None,
        category=None,
        rules=(),
        steps=tuple(walk.steps),
        text=trimmed.text if trimmed else None,
        trimmed=trimmed.removed if trimmed else "",
        notifications=(),
        error=walk.error,
    )


def _explained(
    walk: _Walk,
    run: MailRun,
    decision: Decision,
    ticket: Ticket | None,
    stored: str | None,
    queued: tuple[Queued, ...],
    not_sent: tuple[str, ...],
) -> Explanation:
    mail = walk.mail
    if mail is None:
        raise AssertionError("a stage decided before parse_mail")
    item = run.item
    trimmed = trim_reply(mail.text, html=mail.html)
    routing = getattr(walk.value, "routing", None)
    if decision.outcome is Outcome.DROPPED and isinstance(walk.value, Threaded):
        routing = fired_rules(walk.value, run)
    return Explanation(
        outcome=decision.outcome.value,
        ticket_id=decision.ticket_id,
        requester=_requester(mail, item, decision, ticket, walk.steps),
        title=ticket.title if ticket is not None else None,
        priority=ticket.priority if ticket is not None else None,
        category=ticket.category if ticket is not None else None,
        rules=routing.names if routing is not None else (),
        steps=tuple(walk.steps),
        text=stored if stored is not None else trimmed.text,
        trimmed=trimmed.removed,
        notifications=queued,
        not_sent=not_sent,
    )


def _requester(
    mail: ParsedMail, item: ClaimedItem, decision: Decision, ticket: Ticket | None, steps: list[Step]
) -> Requester:
    """Who the mail is from (the header it came from); for a ticket opened for someone else (a web
    form's visitor, a forwarded mail's sender) that person, with the stage that read them as source."""
    found = find_requester(mail, item.envelope)
    if decision.outcome is not Outcome.TICKET or ticket is None:
        return found
    if ticket.requester_address.lower() == found.address.address.lower():
        return found
    decided_by = next((s.stage for s in reversed(steps) if s.stage != "notifications"), "")
    return Requester(Address(ticket.requester_address, ticket.requester_name), decided_by)


def _notifications_step(queued: tuple[Queued, ...], not_sent: tuple[str, ...]) -> Step:
    said = ", ".join(f"{q.template} to {q.to}" for q in queued) or "none"
    reason = "; ".join(f"not sent: {note}" for note in not_sent)
    return Step("notifications", f"would queue {len(queued)}: {said}", reason)
