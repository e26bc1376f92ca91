"""Turns claimed inbox items into tickets: the stage table, and the one exception boundary.

Every stage runs inside one transaction per mail, together with marking the inbox row done, so a
mail ends as exactly one outcome or, on any failure, as nothing at all (and is retried or
quarantined). A transient fault puts the row back with a delay; anything else quarantines it
with the traceback for `ticketgate quarantine retry`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from gateway import metrics
from gateway.backoff import BackoffPolicy
from gateway.domain import ParsedMail
from gateway.errors import NotAMailError, ProcessingError, TransientError
from gateway.logs import mail_fields
from gateway.pipeline.stage_values import (
    Decision,
    MailRun,
    Notifier,
    Outcome,
    Parsed,
    ProcessorDeps,
    ProcessResult,
    Stage,
)
from gateway.pipeline.stages.add_reply import add_reply
from gateway.pipeline.stages.check_duplicate import check_duplicate
from gateway.pipeline.stages.check_flood import check_flood
from gateway.pipeline.stages.check_forged_sender import check_forged_sender
from gateway.pipeline.stages.check_spam import check_spam
from gateway.pipeline.stages.classify_mail import classify_mail
from gateway.pipeline.stages.my_tickets import my_tickets
from gateway.pipeline.stages.open_ticket import open_ticket
from gateway.pipeline.stages.parse_mail import parse_mail
from gateway.pipeline.stages.record_auto_reply import record_auto_reply
from gateway.pipeline.stages.staff_queue import staff_queue
from gateway.pipeline.stages.thread_mail import thread_mail
from gateway.store import tickets as store
from gateway.store.db import unit_of_work
from gateway.store.inbox import ClaimedItem, ClaimLostError, mark_inbox_done

log = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "Decision",
    "MailRun",
    "Notifier",
    "Outcome",
    "ProcessResult",
    "Processor",
    "ProcessorDeps",
]


# The order the stages run in. Each name is its file under stages/ and its function; the first stage
# takes the claimed inbox row, each next one what the one before gave (stage_values.py), and the
# first to return a Decision settles the mail. The name is in the log line and in a quarantine reason.
STAGES: tuple[tuple[str, Stage], ...] = (
    ("parse_mail", parse_mail),
    ("check_duplicate", check_duplicate),
    ("check_spam", check_spam),
    ("classify_mail", classify_mail),
    ("my_tickets", my_tickets),  # before threading: the mail joins and opens no ticket
    ("thread_mail", thread_mail),
    ("record_auto_reply", record_auto_reply),
    ("add_reply", add_reply),
    ("staff_queue", staff_queue),  # `#queue` alone from staff to a plain address: no ticket
    ("check_flood", check_flood),
    ("check_forged_sender", check_forged_sender),
    ("open_ticket", open_ticket),
)


# --- the processor ----------------------------------------------------------------------------


class Processor:
    """Claims inbox items and runs the stages; the only place processing errors are caught."""

    def __init__(
        self, deps: ProcessorDeps, *, worker: str, stages: Sequence[tuple[str, Stage]] = STAGES
    ) -> None:
        """`stages` is the table the mail runs through; another one than STAGES only in tests, to
        pin what the exception boundary does with a stage that raises (no real input can today)."""
        self.deps = deps
        self.worker = worker
        self.stages = tuple(stages)
        self._outage_logged = False

    def process_ids(self, ids: Sequence[int]) -> list[ProcessResult]:
        """Process exactly these items (pipe intake); items another worker holds are left to it."""
        return [self.process_one(item) for item in self.deps.inbox.claim(self.worker, ids=ids)]

    def process_available(self, limit: int = 16) -> list[ProcessResult]:
        """Claim and process up to `limit` due items; an empty list means the queue is idle."""
        try:
            items = self.deps.inbox.claim(self.worker, limit=limit)
        except TransientError as exc:
            self._log_outage(exc)
            return []
        return [self.process_one(item) for item in items]

    def run(self, stop: threading.Event, wake: threading.Event, idle_poll: float = 1.0) -> None:
        """The daemon's processing loop: drain the queue, then wait to be woken (or poll)."""
        while not stop.is_set():
            if self.process_available():
                continue
            wake.wait(idle_poll)
            wake.clear()

    def process_one(self, item: ClaimedItem) -> ProcessResult:
        started = time.perf_counter()
        result = self._process_one(item)
        metrics.mail_processed(result.outcome.value, time.perf_counter() - started)
        return result

    def _process_one(self, item: ClaimedItem) -> ProcessResult:
        progress = _Progress()
        try:
            with unit_of_work(self.deps.sessions) as session:
                result = self._run_stages(MailRun(item, session, self.deps), progress)
        except ClaimLostError:
            # Its node seemed dead (or the lease ran out) and another worker took the mail over:
            # that worker's result stands; this one was rolled back.
            log.warning("inbox %d: taken over by another worker meanwhile; left to it", item.id)
            return ProcessResult(item.id, Outcome.RETRY, None, "taken over by another worker")
        except TransientError as exc:
            return self._transient(item, exc, progress.stage)
        except OSError as exc:  # the blob store's disk: full or unwritable is worth another try
            return self._transient(item, TransientError(f"blob store: {exc}"), progress.stage)
        except NotAMailError as exc:
            return self._quarantine(item, f"not a mail: {exc}", None, progress.stage)
        except ProcessingError as exc:  # refused on purpose (a limit): the reason says it all
            return self._quarantine(item, str(exc), None, progress.stage)
        except Exception as exc:  # the one boundary: nothing accepted is ever dropped
            reason = f"{type(exc).__name__}: {exc}"
            return self._quarantine(item, reason, traceback.format_exc(), progress.stage)
        if self._outage_logged:
            log.info("processing resumed")
            self._outage_logged = False
        fields = mail_fields(item.id, progress.mail, result, self.deps.settings.gateway.ticket_prefix)
        fields["stage"] = progress.decided_by
        log.info(
            "inbox %d: stage %s: %s (%s)", item.id, progress.decided_by, result.outcome, result.detail,
            extra=fields,
        )  # fmt: skip
        return result

    def _run_stages(self, run: MailRun, progress: _Progress) -> ProcessResult:
        value: object = run.item
        for name, stage in self.stages:
            progress.stage = name
            out = stage(value, run)
            if isinstance(out, Decision):
                progress.stage, progress.decided_by = None, name
                return self._record(run, value, out)
            value = out
            if isinstance(value, Parsed):
                progress.mail = value.mail
        raise AssertionError("the last stage always decides")

    def _record(self, run: MailRun, mail: object, decision: Decision) -> ProcessResult:
        """The decision, recorded in the mail's transaction: its de-duplication key, the notifications
        its happenings call for, and the inbox row's outcome."""
        if not isinstance(mail, Parsed):
            raise AssertionError("a stage decided before parse_mail")
        item, session = run.item, run.session
        if decision.outcome is not Outcome.DUPLICATE:
            store.record_seen(
                session,
                key=mail.dedup_key,
                message_id=mail.mail.message_id,
                content_hash=mail.mail.content_hash,
                inbox_id=item.id,
                outcome=decision.outcome.value,
                ticket_id=decision.ticket_id,
            )
        if self.deps.notifier is not None and decision.happenings:
            self.deps.notifier.plan(session, decision.happenings, inbox_id=item.id)
        notes = [decision.detail, *([mail.collision] if mail.collision else [])]
        mark_inbox_done(
            session,
            inbox_id=item.id,
            outcome=decision.outcome.value,
            ticket_id=decision.ticket_id,
            message_id=mail.mail.message_id,
            note="; ".join(notes) or None,
            worker=self.worker,
        )
        return ProcessResult(item.id, decision.outcome, decision.ticket_id, decision.detail)

    def _transient(self, item: ClaimedItem, exc: TransientError, stage: str | None) -> ProcessResult:
        processing = self.deps.settings.processing
        if item.attempts >= processing.max_attempts:
            reason = f"gave up after {item.attempts} attempts: {exc}"
            return self._quarantine(item, reason, None, stage)
        delay = _backoff(item.attempts, processing.retry_base_seconds)
        self._log_outage(exc)
        # If even this fails, the lease runs out and the item is claimed again: nothing is lost.
        with contextlib.suppress(TransientError):
            self.deps.inbox.retry_later(item.id, delay=delay, error=str(exc), worker=self.worker)
        return ProcessResult(item.id, Outcome.RETRY, None, f"{exc}; retry in {delay.total_seconds():.0f}s")

    def _quarantine(
        self, item: ClaimedItem, reason: str, detail: str | None, stage: str | None
    ) -> ProcessResult:
        """Quarantines the mail; the reason names the stage that failed ("stage classify_mail: ..."),
        when one did rather than the recording of a decision."""
        if stage is not None:
            reason = f"stage {stage}: {reason}"
        log.warning(
            "inbox %d quarantined: %s", item.id, reason,
            extra={"inbox_id": item.id, "outcome": "quarantine", "stage": stage},
        )  # fmt: skip
        try:
            self.deps.inbox.quarantine(item.id, reason=reason, detail=detail, worker=self.worker)
        except TransientError as exc:
            self._log_outage(exc)
            return ProcessResult(item.id, Outcome.RETRY, None, f"could not quarantine: {exc}")
        return ProcessResult(item.id, Outcome.QUARANTINE, None, reason)

    def _log_outage(self, exc: Exception) -> None:
        if not self._outage_logged:
            # The message names the cause: "database unavailable: …", "blob store: …".
            log.error("processing held up, will retry: %s", exc)
            self._outage_logged = True


@dataclass
class _Progress:
    """How far one mail got: the stage running now (named in a quarantine reason), the one that
    decided (named in the log line), and the parsed mail (for the log line's fields)."""

    stage: str | None = None
    decided_by: str | None = None
    mail: ParsedMail | None = None


RETRY_CAP_SECONDS = 3600.0  # a transient fault is retried at least once an hour


def _backoff(attempts: int, base_seconds: float) -> timedelta:
    """Capped exponential back-off with jitter (gateway/backoff.py), so a recovering database is
    not stampeded."""
    return timedelta(seconds=BackoffPolicy(base_seconds, RETRY_CAP_SECONDS).delay(attempts))
