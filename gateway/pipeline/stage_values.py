"""What the stages share: the mail's context, the dependencies, and the outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from sqlalchemy.orm import Session

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.domain import Address, ParsedMail
from gateway.pipeline.classify import Classification
from gateway.pipeline.happenings import Happening
from gateway.pipeline.new_ticket import IntakeDefaults
from gateway.pipeline.staff_auth import NOT_STAFF, DnsFunc, StaffAuth
from gateway.pipeline.thread import ThreadMatch
from gateway.store.blobs import BlobStore
from gateway.store.inbox import ClaimedItem, InboxStore


class Outcome(StrEnum):
    TICKET = "ticket"
    REPLY = "reply"
    DUPLICATE = "duplicate"
    BOUNCE = "bounce"
    ABUSE_REPORT = "abuse_report"
    AUTO_REPLY = "auto_reply"
    SPAM = "spam"  # the deployment's filter said spam: stored, no ticket, releasable
    FLOOD = "flood"  # over the sender's new-ticket limit: stored, no ticket, releasable
    QUARANTINE = "quarantine"
    RETRY = "retry"


@dataclass(frozen=True)
class ProcessResult:
    """What became of one inbox item; `detail` is for people (CLI output, logs)."""

    inbox_id: int
    outcome: Outcome
    ticket_id: int | None = None
    detail: str = ""


@dataclass
class MailContext:
    """What the stages learn about one mail as it travels; filled in stage by stage."""

    item: ClaimedItem
    session: Session
    mail: ParsedMail | None = None
    dedup_key: str = ""
    classification: Classification | None = None
    notes: list[str] = field(default_factory=list)
    happenings: list[Happening] = field(default_factory=list)
    sender: Address | None = None  # From (or the envelope sender), set by the thread stage
    thread: ThreadMatch | None = None
    staff: StaffAuth = NOT_STAFF

    @property
    def parsed(self) -> ParsedMail:
        assert self.mail is not None, "parse stage has not run"
        return self.mail


class Notifier(Protocol):
    """Turns what happened into outbox rows, inside the mail's own transaction."""

    # inbox_id is None when no mail caused the happenings (the scheduler's auto-close).
    def plan(self, session: Session, happenings: Sequence[Happening], *, inbox_id: int | None) -> None: ...


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


Stage = Callable[[MailContext, ProcessorDeps], ProcessResult | None]
