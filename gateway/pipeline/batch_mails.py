"""The mails of a batch as the processor carries them from stage to stage (gateway/pipeline/processor.py):
how far each got, what it led to, and what the whole batch asks of the store at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.domain import ParsedMail
from gateway.pipeline.stage_values import Decision, Parsed, ProcessResult
from gateway.store.inbox import ClaimedItem


def senders_of(mails: Sequence[Prepared]) -> list[str]:
    """The From addresses of a batch's mails: their per-sender limits (SPEC §11) are counted in the
    batch's transaction, whose locks on them (`store.limits.hold_senders`) are taken together and
    in one order before its first mail, so two batches never wait for each other in a cycle."""
    return [
        mail.value.mail.sender.address
        for mail in mails
        if isinstance(mail.value, Parsed) and mail.value.mail.sender is not None
    ]


def message_ids_of(mails: Sequence[Prepared]) -> list[str | None]:
    """The Message-IDs of a batch's mails (their de-duplication looks them up)."""
    return [mail.value.mail.message_id for mail in mails if isinstance(mail.value, Parsed)]


@dataclass
class Progress:
    """How far one mail got: the stage running now (named in a quarantine reason), the one that
    decided (named in the log line), and the parsed mail (for the log line's fields)."""

    stage: str | None = None
    decided_by: str | None = None
    mail: ParsedMail | None = None


@dataclass(frozen=True)
class Prepared:
    """A mail after its stages outside the transaction: the value they led to, or their Decision."""

    item: ClaimedItem
    value: object
    decision: Decision | None
    progress: Progress
    seconds: float


@dataclass(frozen=True)
class Ran:
    """A mail whose stages ran and whose savepoint was released: recorded once the batch commits."""

    item: ClaimedItem
    result: ProcessResult
    progress: Progress
    seconds: float


@dataclass(frozen=True)
class Failed:
    """A mail whose savepoint was rolled back, and why."""

    item: ClaimedItem
    error: Exception
    traceback: str
    progress: Progress
    seconds: float
