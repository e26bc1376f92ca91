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
from datetime import timedelta

from gateway import metrics
from gateway.backoff import BackoffPolicy
from gateway.errors import NotAMailError, ProcessingError, TransientError
from gateway.logs import mail_fields
from gateway.pipeline.stages.auto_reply import auto_reply_stage
from gateway.pipeline.stages.classify_mail import classify_stage
from gateway.pipeline.stages.context import (
    MailContext,
    Notifier,
    Outcome,
    ProcessorDeps,
    ProcessResult,
    Stage,
)
from gateway.pipeline.stages.flood import flood_stage
from gateway.pipeline.stages.forged_sender import forged_sender_stage
from gateway.pipeline.stages.my_tickets import my_tickets_stage
from gateway.pipeline.stages.open_ticket import open_ticket_stage
from gateway.pipeline.stages.parse_mail import duplicate_stage, parse_stage
from gateway.pipeline.stages.reply import reply_stage
from gateway.pipeline.stages.spam import spam_stage
from gateway.pipeline.stages.staff_queue import staff_queue_stage
from gateway.pipeline.stages.thread_mail import thread_stage
from gateway.store import tickets as store
from gateway.store.db import unit_of_work
from gateway.store.inbox import ClaimedItem, ClaimLostError, mark_inbox_done

log = logging.getLogger(__name__)

__all__ = ["STAGES", "MailContext", "Notifier", "Outcome", "ProcessResult", "Processor", "ProcessorDeps"]


STAGES: tuple[tuple[str, Stage], ...] = (
    ("parse", parse_stage),
    ("duplicate", duplicate_stage),
    ("spam", spam_stage),
    ("classify", classify_stage),
    ("my_tickets", my_tickets_stage),  # before threading: the mail joins and opens no ticket
    ("thread", thread_stage),
    ("auto_reply", auto_reply_stage),
    ("reply", reply_stage),
    ("staff_queue", staff_queue_stage),  # `#queue` alone from staff to a plain address: no ticket
    ("flood", flood_stage),
    ("forged_sender", forged_sender_stage),
    ("open_ticket", open_ticket_stage),
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
        try:
            with unit_of_work(self.deps.sessions) as session:
                ctx = MailContext(item=item, session=session)
                result = self._run_stages(ctx)
        except ClaimLostError:
            # Its node seemed dead (or the lease ran out) and another worker took the mail over:
            # that worker's result stands; this one was rolled back.
            log.warning("inbox %d: taken over by another worker meanwhile; left to it", item.id)
            return ProcessResult(item.id, Outcome.RETRY, None, "taken over by another worker")
        except TransientError as exc:
            return self._transient(item, exc)
        except OSError as exc:  # the blob store's disk: full or unwritable is worth another try
            return self._transient(item, TransientError(f"blob store: {exc}"))
        except NotAMailError as exc:
            return self._quarantine(item, f"not a mail: {exc}", None)
        except ProcessingError as exc:  # refused on purpose (a limit): the reason says it all
            return self._quarantine(item, str(exc), None)
        except Exception as exc:  # the one boundary: nothing accepted is ever dropped
            return self._quarantine(item, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        if self._outage_logged:
            log.info("processing resumed")
            self._outage_logged = False
        fields = mail_fields(item.id, ctx.mail, result, self.deps.settings.gateway.ticket_prefix)
        log.info("inbox %d: %s (%s)", item.id, result.outcome, result.detail, extra=fields)
        return result

    def _run_stages(self, ctx: MailContext) -> ProcessResult:
        for _name, stage in self.stages:
            result = stage(ctx, self.deps)
            if result is None:
                continue
            mail = ctx.parsed
            if result.outcome is not Outcome.DUPLICATE:
                store.record_seen(
                    ctx.session,
                    key=ctx.dedup_key,
                    message_id=mail.message_id,
                    content_hash=mail.content_hash,
                    inbox_id=ctx.item.id,
                    outcome=result.outcome.value,
                    ticket_id=result.ticket_id,
                )
            if self.deps.notifier is not None and ctx.happenings:
                self.deps.notifier.plan(ctx.session, ctx.happenings, inbox_id=ctx.item.id)
            mark_inbox_done(
                ctx.session,
                inbox_id=ctx.item.id,
                outcome=result.outcome.value,
                ticket_id=result.ticket_id,
                message_id=mail.message_id,
                note="; ".join([result.detail, *ctx.notes]) or None,
                worker=self.worker,
            )
            return result
        raise AssertionError("the last stage always decides")

    def _transient(self, item: ClaimedItem, exc: TransientError) -> ProcessResult:
        processing = self.deps.settings.processing
        if item.attempts >= processing.max_attempts:
            return self._quarantine(item, f"gave up after {item.attempts} attempts: {exc}", None)
        delay = _backoff(item.attempts, processing.retry_base_seconds)
        self._log_outage(exc)
        # If even this fails, the lease runs out and the item is claimed again: nothing is lost.
        with contextlib.suppress(TransientError):
            self.deps.inbox.retry_later(item.id, delay=delay, error=str(exc), worker=self.worker)
        return ProcessResult(item.id, Outcome.RETRY, None, f"{exc}; retry in {delay.total_seconds():.0f}s")

    def _quarantine(self, item: ClaimedItem, reason: str, detail: str | None) -> ProcessResult:
        log.warning(
            "inbox %d quarantined: %s", item.id, reason, extra={"inbox_id": item.id, "outcome": "quarantine"}
        )
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


RETRY_CAP_SECONDS = 3600.0  # a transient fault is retried at least once an hour


def _backoff(attempts: int, base_seconds: float) -> timedelta:
    """Capped exponential back-off with jitter (gateway/backoff.py), so a recovering database is
    not stampeded."""
    return timedelta(seconds=BackoffPolicy(base_seconds, RETRY_CAP_SECONDS).delay(attempts))
