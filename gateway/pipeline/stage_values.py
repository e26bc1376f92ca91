"""What a stage takes and gives (the stage table is in processor.py, the stages in stages/).

A stage is `stage(mail, run) -> next value | Decision`. `mail` is the typed value the stages before
it built, frozen: `Parsed` (after parse_mail), `Classified` (after classify_mail), `Threaded` (after
thread_mail); each extends the one before, so a stage that needs only the parsed mail can sit
anywhere after parse_mail. A stage that lets the mail go on returns the value for the next one (the
same, or grown); a stage that settles the mail returns a `Decision`, and the processor records it.
`run` is what every stage may use: the inbox row, the mail's transaction and the dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.domain import Address, Happening, Outcome, ParsedMail
from gateway.domain import ProcessResult as ProcessResult  # re-exported for the processor
from gateway.mail.rawmail import top_header_fields
from gateway.pipeline.classify import Classification
from gateway.pipeline.new_ticket_plan import IntakeDefaults
from gateway.pipeline.routing_rules import NO_ROUTING, Routing
from gateway.pipeline.staff_auth import DnsFunc, StaffAuth
from gateway.pipeline.thread import ThreadMatch
from gateway.store.blobs import BlobStore
from gateway.store.inbox import ClaimedItem, InboxStore


@dataclass(frozen=True)
class Decision:
    """A stage settled the mail: its outcome, the ticket it opened or joined, and what happened
    (for the notification planner, in the same transaction)."""

    outcome: Outcome
    ticket_id: int | None
    detail: str  # for people: the inbox row's note, the CLI, the log line
    happenings: tuple[Happening, ...] = ()


class Notifier(Protocol):
    """Turns what happened into outbox rows, inside the mail's own transaction."""

    # inbox_id is None when no mail caused the happenings (the scheduler's auto-close).
    def plan(self, session: Session, happenings: Sequence[Happening], *, inbox_id: int | None) -> None: ...

    # A batch of mails from these senders begins, in a transaction rolled back whole on any failure
    # (with `read_ahead`, what it may read at once for all of them, it reads now).
    def batch_begins(self, session: Session, senders: Sequence[str], *, read_ahead: bool) -> None: ...

    # That batch is about to commit: what it held back is written now.
    def batch_ends(self, session: Session) -> None: ...


@dataclass(frozen=True)
class ProcessorDeps:
    settings: Settings
    ours: GatewayAddresses
    inbox: InboxStore
    blobs: BlobStore
    intake_defaults: dict[str, IntakeDefaults] = field(default_factory=dict)  # by envelope source
    notifier: Notifier | None = None  # None: nothing is sent (the notifications issue fills this in)
    dkim_dns: DnsFunc | None = None  # TXT lookups for DKIM; None: dkimpy's resolver (tests inject one)

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.inbox.sessions


@dataclass(frozen=True)
class MailRun:
    """The one mail being processed: its inbox row, its transaction, and the dependencies."""

    item: ClaimedItem
    session: Session
    deps: ProcessorDeps

    @cached_property
    def header_fields(self) -> tuple[tuple[str, str], ...]:
        """The mail's own header fields as written (rawmail.top_header_fields), read once: the spam
        and forged-sender checks both read them, and reading the raw header section again was
        ~1 % of processing a mail."""
        return tuple(top_header_fields(self.item.raw))


# --- the values passed from stage to stage ----------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """parse_mail's result: the mail, parsed once, and its de-duplication key."""

    mail: ParsedMail
    dedup_key: str
    # Set by check_duplicate: its Message-ID is also another mail's; said on the ticket and the inbox row.
    collision: str | None = None


@dataclass(frozen=True, kw_only=True)
class Classified(Parsed):
    """classify_mail's result: what kind of mail it is, and whether it may be answered."""

    classification: Classification


@dataclass(frozen=True, kw_only=True)
class Threaded(Classified):
    """thread_mail's result: who wrote it, whether they are authenticated staff, which ticket it joins."""

    sender: Address  # From (or the envelope sender)
    staff: StaffAuth
    thread: ThreadMatch
    routing: Routing = NO_ROUTING  # set by apply_rules: what `[[rules]]` decide for a new ticket


P = TypeVar("P", bound=Parsed)
G = TypeVar("G", bound=Parsed)


def grow(value: Parsed, into: type[G], **more: Any) -> G:
    """`value` as the next, larger value type: its fields kept, `more` added."""
    return into(**{f.name: getattr(value, f.name) for f in fields(value)}, **more)


# A stage: (the value so far, the run) -> the value for the next stage, or a Decision. Its types are
# per stage; tests/unit/test_stage_table.py checks that each stage takes what the one before gives.
Stage = Callable[[Any, MailRun], Any]
