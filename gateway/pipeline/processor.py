"""Turns claimed inbox items into tickets: the stage table, batches, and the one exception boundary.

Every stage of a mail runs in the same transaction as marking the inbox row done, so a mail ends
as exactly one outcome or, on any failure, as nothing at all (and is retried or quarantined).
Several mails share one transaction (a batch, `Processor._apply_batch`): one commit and one turn
on the write lock for all of them. A batch runs first without savepoints; if a mail of it fails,
the batch is rolled back and run again with a savepoint per mail, so the failing mail rolls back
only its own. A transient fault puts the row back with a delay; anything else quarantines it with
the traceback for `ticketgate quarantine retry`.

When the database cannot take even that (it is down, its disk is full), the give-back is kept in
memory and written before the worker claims again, and after a claim or batch whose transaction
failed every row the worker may still hold is given back: a live worker's mail waits out no lease.
A worker whose node's own heartbeat has gone stale claims nothing until it beats again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from gateway.backoff import BackoffPolicy
from gateway.errors import NotAMailError, ProcessingError, TransientError
from gateway.ops import metrics
from gateway.ops.logs import mail_fields
from gateway.pipeline.batch_mails import Failed, Prepared, Progress, Ran, message_ids_of, senders_of
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
from gateway.pipeline.stages.apply_rules import apply_rules
from gateway.pipeline.stages.check_duplicate import check_duplicate
from gateway.pipeline.stages.check_flood import check_flood
from gateway.pipeline.stages.check_forged_sender import check_forged_sender
from gateway.pipeline.stages.check_spam import check_spam
from gateway.pipeline.stages.classify_mail import classify_mail
from gateway.pipeline.stages.my_tickets import my_tickets
from gateway.pipeline.stages.open_forward import open_forward
from gateway.pipeline.stages.open_ticket import open_ticket
from gateway.pipeline.stages.parse_mail import parse_mail
from gateway.pipeline.stages.read_form import read_form
from gateway.pipeline.stages.record_auto_reply import record_auto_reply
from gateway.pipeline.stages.staff_queue import staff_queue
from gateway.pipeline.stages.thread_mail import thread_mail
from gateway.store import tickets as store
from gateway.store.db import (
    DatabaseFault,
    as_database_fault,
    intake_waiting,
    is_sqlite,
    savepoint,
    unit_of_work,
)
from gateway.store.inbox import ClaimedItem, ClaimLostError, InboxOutcome, mark_held_inbox_done
from gateway.store.limits import hold_senders
from gateway.store.models import utcnow
from gateway.store.nodes import OwnHeartbeatStale

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
    ("apply_rules", apply_rules),  # `[[rules]]`: drop, or what the new ticket gets (SPEC §14)
    ("read_form", read_form),  # a [[forms]] sender's mail: the visitor's ticket (SPEC §13)
    ("open_forward", open_forward),  # staff forwarding a customer's mail: the customer's ticket (§13)
    ("check_flood", check_flood),
    ("check_forged_sender", check_forged_sender),
    ("open_ticket", open_ticket),
)


# The stages that use nothing but the mail and the settings, never the transaction: the leading ones
# of the table run for every mail of a claim before its batch transaction begins, so the write lock
# is not held while a mail is parsed. (A stage listed here that touches the session fails loudly.)
OUTSIDE_TRANSACTION = frozenset({"parse_mail"})

# A batch: the mails one claim takes (and one transaction commits, when they fit its time). On
# SQLite a batch stops taking mails as soon as intake's group commit waits for the write lock
# (gateway/store/db.py, `intake_waiting`), so a `250` waits for one mail's statements, not a batch;
# and, as a backstop (a place where the signal's file cannot be made), once its transaction has held
# the write lock BATCH_SECONDS. After a batch that intake did not cut the worker leaves the lock
# alone for HANDOVER_SECONDS, longer than a writer of another process waits between two tries for
# it (at most 2 ms), or the worker, which goes on at once, would take it again before the sender or
# the heartbeat next looks; after one that intake cut, its next BEGIN lets intake through first.
BATCH_SIZE = 16
BATCH_SECONDS = 0.025
HANDOVER_SECONDS = 0.003


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
        outside = 0
        while outside < len(self.stages) and self.stages[outside][0] in OUTSIDE_TRANSACTION:
            outside += 1
        self._before, self._inside = self.stages[:outside], self.stages[outside:]
        self._outage_logged = False
        self._stale: str | None = None  # why nothing is claimed, while the node's heartbeat is stale
        # Give-backs (retry later, quarantine) the database did not take, in order; and whether a
        # claim or batch failed in a way that may have left rows claimed by this worker unknown to it.
        self._kept: list[Callable[[], None]] = []
        self._lost_claims = False
        # SQLite has one writer at a time, and a batch holds that turn from BEGIN to COMMIT.
        self._batch_seconds = BATCH_SECONDS if is_sqlite(deps.inbox.engine) else None
        self._cut_for_intake = False  # the last batch ended because intake waited (_hand_over)

    def process_ids(self, ids: Sequence[int]) -> list[ProcessResult]:
        """Process exactly these items (pipe intake); items another worker holds are left to it."""
        return self.process_batch(self.deps.inbox.claim(self.worker, ids=ids))

    def process_available(self, limit: int = BATCH_SIZE) -> list[ProcessResult]:
        """Claim and process up to `limit` due items; an empty list means the queue is idle (or
        the database is away, or this node's heartbeat is stale)."""
        if not self._give_back_kept():
            return []
        try:
            items = self.deps.inbox.claim(self.worker, limit=limit)
        except OwnHeartbeatStale as exc:
            if self._stale is None:
                log.warning("%s: claiming no mail until it beats again", exc)
            self._stale = str(exc)
            return []
        except TransientError as exc:
            self._lost_claims = True  # its COMMIT may have happened, the answer lost on the way
            self._log_outage(exc)
            return []
        if self._stale is not None:
            log.info("node heartbeat fresh again: claiming mail (was: %s)", self._stale)
            self._stale = None
        return self.process_batch(items)

    def _give_back_kept(self) -> bool:
        """Write the give-backs the database did not take, then give back whatever this worker may
        still hold unknowingly; False while the database still does not answer."""
        try:
            while self._kept:
                self._kept[0]()
                self._kept.pop(0)
            if self._lost_claims:
                lost = self.deps.inbox.give_back_all(self.worker)
                self._lost_claims = False
                if lost:
                    log.info("gave back %d mail(s) claimed while the database failed", lost)
        except TransientError as exc:
            self._log_outage(exc)
            return False
        return True

    def run(self, stop: threading.Event, wake: threading.Event, idle_poll: float = 1.0) -> None:
        """The daemon's processing loop: drain the queue, then wait to be woken (or poll).

        A claim that came back short took everything that was due: the loop then waits for the
        next wake-up instead of claiming again at once, which under a steady trickle of mail was
        an empty claim after every batch (a write transaction, and on SQLite a turn on the write
        lock that intake's `250` waits behind). The wake-up is cleared before the claim, so mail
        that arrives while the batch runs ends the wait at once."""
        while not stop.is_set():
            wake.clear()
            if len(self.process_available()) >= BATCH_SIZE:
                continue  # a full claim: more is probably due
            wake.wait(idle_poll)

    def process_one(self, item: ClaimedItem) -> ProcessResult:
        return self.process_batch([item])[0]

    def process_batch(self, items: Sequence[ClaimedItem]) -> list[ProcessResult]:
        """Process claimed items, as many per transaction as `_apply_batch` takes; their results in
        the order of `items`."""
        results: dict[int, ProcessResult] = {}
        left: list[Prepared] = []
        for item in items:
            prepared = self._prepare(item)
            if isinstance(prepared, Failed):
                results[item.id] = self._timed(self._failure(prepared), prepared.seconds)
            else:
                left.append(prepared)
        while left:
            left = self._apply_batch(left, results)
        return [results[item.id] for item in items]

    def _prepare(self, item: ClaimedItem) -> Prepared | Failed:
        """The mail's stages that need no transaction (OUTSIDE_TRANSACTION), run before it begins."""
        progress, started = Progress(), time.perf_counter()
        run = MailRun(item, _NO_TRANSACTION, self.deps)
        try:
            value, decision = self._step(item, run, progress, self._before)
        except Exception as exc:  # the one boundary, as in _run_in_savepoint
            return Failed(item, exc, traceback.format_exc(), progress, time.perf_counter() - started)
        return Prepared(item, value, decision, progress, time.perf_counter() - started)

    def _apply_batch(self, mails: list[Prepared], results: dict[int, ProcessResult]) -> list[Prepared]:
        """Run mails of `mails` in one transaction and commit them together: one commit (one fsync)
        and one turn on the write lock for the batch, not per mail.

        First without a savepoint per mail (two statements and their bookkeeping each, ~3 % of a
        mail's processing): almost every batch has no failing mail. If one fails, the whole
        transaction is rolled back and the same mails run again with a savepoint each
        (`_apply_batch_in_savepoints`), so what is committed and recorded is exactly what that way
        alone gives. Nothing of the first run is kept but files a blob store wrote (stored by their
        hash, as a rolled-back savepoint leaves them too) and log lines of its stages.
        """
        done: list[Ran] = []
        left: list[Prepared] = []
        outcomes: list[InboxOutcome] = []  # the inbox rows' outcomes, written together at the end
        try:
            with unit_of_work(self.deps.sessions) as session:
                senders = senders_of(mails)
                hold_senders(session, senders)
                # What this transaction, rolled back whole on a failure, may read for all its mails
                # at once: worth it for two or more (each read is a statement SQLAlchemy compiles
                # per call, an IN list, where one mail's own lookups are statements built once).
                read_ahead = len(mails) > 1
                if read_ahead:
                    store.know_seen(session, message_ids_of(mails))
                if self.deps.notifier is not None:
                    self.deps.notifier.batch_begins(session, senders, read_ahead=read_ahead)
                opened = time.perf_counter()
                for index, mail in enumerate(mails):
                    if index and self._batch_over(opened):
                        left = mails[index:]
                        break
                    ran = self._run_plain(mail, MailRun(mail.item, session, self.deps), outcomes)
                    if ran is None:
                        raise _Replay
                    done.append(ran)
                try:
                    with as_database_fault():
                        store.write_held_seen(session)
                        if self.deps.notifier is not None:
                            self.deps.notifier.batch_ends(session)
                        mark_held_inbox_done(session, outcomes, worker=self.worker)
                # A claim lost, or a key another node stored meanwhile (the same mail through SMTP
                # and IMAP at once): which mail it was is sorted out one by one, as a failure of
                # the mail itself would have been.
                except (ClaimLostError, DatabaseFault):
                    raise _Replay from None
        except _Replay:
            return self._apply_batch_in_savepoints(mails, results)
        except TransientError as exc:  # BEGIN or COMMIT failed: nothing of this batch was recorded
            self._lost_claims = True  # or its COMMIT happened, the answer lost: _give_back_kept
            for mail in mails:
                results[mail.item.id] = self._timed(self._transient(mail.item, exc, None), mail.seconds)
            return []
        for ran in done:
            results[ran.item.id] = self._timed(self._recorded(ran), ran.seconds)
        self._hand_over()
        return left

    def _batch_over(self, opened: float) -> bool:
        """Take no more mails into the batch transaction opened at `opened` (never on PostgreSQL):
        intake's group commit waits for SQLite's write lock this batch holds, so the batch commits
        now and intake goes next; or, as the backstop, the batch has held the lock BATCH_SECONDS."""
        if not self._batch_seconds:
            return False
        if intake_waiting(self.deps.inbox.engine):
            self._cut_for_intake = True
            return True
        return time.perf_counter() - opened >= self._batch_seconds

    def _hand_over(self) -> None:
        """After a batch on SQLite: leave the write lock alone long enough for a writer of another
        process to see it free, unless intake cut the batch (the next BEGIN lets intake through)."""
        if self._batch_seconds and not self._cut_for_intake:
            time.sleep(HANDOVER_SECONDS)
        self._cut_for_intake = False

    def _run_plain(self, mail: Prepared, run: MailRun, outcomes: list[InboxOutcome]) -> Ran | None:
        """One mail of a batch without a savepoint of its own; None if it failed (its batch is then
        rolled back and run again in savepoints, which sorts out the failure). Its inbox row's
        outcome is added to `outcomes`, for the batch to write with the others'."""
        session = run.session
        progress = dataclasses.replace(mail.progress)  # the run again starts from the prepared state
        started = time.perf_counter() - mail.seconds
        try:
            value, decision = mail.value, mail.decision
            if decision is None:
                value, decision = self._step(value, run, progress, self._inside)
            if decision is None:
                raise AssertionError("the last stage always decides")
            result = self._record(run, value, decision, outcomes)
            session.flush()  # before the identity map is dropped: what the ORM holds is written
        except Exception:  # met again, and sorted out, when the batch runs in savepoints
            return None
        finally:
            session.expunge_all()  # each mail starts with an empty identity map (_run_in_savepoint)
            session.info.pop("inserted_rows", None)
        return Ran(mail.item, result, progress, time.perf_counter() - started)

    def _apply_batch_in_savepoints(
        self, mails: list[Prepared], results: dict[int, ProcessResult]
    ) -> list[Prepared]:
        """Run mails of `mails` in one transaction, each in a savepoint of its own, and commit them
        together (the way a batch with a failing mail is run).

        A mail that fails rolls back its own savepoint only; the others commit, and it is retried
        or quarantined alone once the transaction is over (those take the write lock themselves).
        The stages run inside the savepoint, so whatever they read (the thread target, the
        duplicate key, a ticket's status, the earlier mails of the batch) is the transaction's own.
        On SQLite the batch stops taking mails once intake waits for the write lock (or it has held
        it `BATCH_SECONDS`), so intake's group commit gets its turn; the mails not taken are
        returned for the next batch.
        """
        done: list[Ran] = []
        failed: list[Failed] = []
        left: list[Prepared] = []
        try:
            with unit_of_work(self.deps.sessions) as session:
                hold_senders(session, senders_of(mails))
                opened = time.perf_counter()
                for index, mail in enumerate(mails):
                    if index and self._batch_over(opened):
                        left = mails[index:]
                        break
                    ran = self._run_in_savepoint(mail, MailRun(mail.item, session, self.deps))
                    if isinstance(ran, Ran):
                        done.append(ran)
                        continue
                    failed.append(ran)
                    if isinstance(ran.error, DatabaseFault):  # the transaction itself may be unusable
                        left = mails[index + 1 :]
                        break
        except TransientError as exc:  # BEGIN or COMMIT failed: nothing of this batch was recorded
            self._lost_claims = True  # or its COMMIT happened, the answer lost: _give_back_kept
            unrecorded = {f.item.id for f in failed}
            for mail in mails:
                if mail.item.id not in unrecorded:
                    results[mail.item.id] = self._timed(self._transient(mail.item, exc, None), mail.seconds)
            left = []
            done = []
        for ran in done:
            results[ran.item.id] = self._timed(self._recorded(ran), ran.seconds)
        for fail in failed:
            results[fail.item.id] = self._timed(self._failure(fail), fail.seconds)
        self._hand_over()
        return left

    def _run_in_savepoint(self, mail: Prepared, run: MailRun) -> Ran | Failed:
        item, session, progress = run.item, run.session, mail.progress
        started = time.perf_counter() - mail.seconds
        try:
            with savepoint(session):
                value, decision = mail.value, mail.decision
                if decision is None:
                    value, decision = self._step(value, run, progress, self._inside)
                if decision is None:
                    raise AssertionError("the last stage always decides")
                result = self._record(run, value, decision)
        except Exception as exc:  # the one boundary: sorted out in _failure, once the batch is over
            return Failed(item, exc, traceback.format_exc(), progress, time.perf_counter() - started)
        finally:
            # Each mail starts with an empty identity map, as with a transaction of its own: nothing
            # read or attached (gateway/store/rows.py) for one mail, or rolled back, serves the next.
            session.expunge_all()
            session.info.pop("inserted_rows", None)
        return Ran(item, result, progress, time.perf_counter() - started)

    def _timed(self, result: ProcessResult, seconds: float) -> ProcessResult:
        metrics.mail_processed(result.outcome.value, seconds)
        return result

    def _recorded(self, ran: Ran) -> ProcessResult:
        """A mail whose decision the batch committed: the log line."""
        item, result, progress = ran.item, ran.result, ran.progress
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

    def _failure(self, fail: Failed) -> ProcessResult:
        """A mail whose savepoint rolled back: retried later, or quarantined with the reason."""
        item, stage, exc = fail.item, fail.progress.stage, fail.error
        if isinstance(exc, ClaimLostError):
            # Its node seemed dead (or the lease ran out) and another worker took the mail over:
            # that worker's result stands; this one was rolled back.
            log.warning("inbox %d: taken over by another worker meanwhile; left to it", item.id)
            return ProcessResult(item.id, Outcome.RETRY, None, "taken over by another worker")
        if isinstance(exc, TransientError):
            return self._transient(item, exc, stage)
        if isinstance(exc, OSError):  # the blob store's disk: full or unwritable is worth another try
            return self._transient(item, TransientError(f"blob store: {exc}"), stage)
        if isinstance(exc, NotAMailError):
            return self._quarantine(item, f"not a mail: {exc}", None, stage)
        if isinstance(exc, ProcessingError):  # refused on purpose (a limit): the reason says it all
            return self._quarantine(item, str(exc), None, stage)
        # Anything else: nothing accepted is ever dropped; the traceback is kept for staff.
        return self._quarantine(item, f"{type(exc).__name__}: {exc}", fail.traceback, stage)

    def _step(
        self, value: object, run: MailRun, progress: Progress, stages: Sequence[tuple[str, Stage]]
    ) -> tuple[object, Decision | None]:
        """Run `stages` from `value`: the value they lead to, and the Decision if one of them settled
        the mail (then the value is what the deciding stage was given)."""
        for name, stage in stages:
            progress.stage = name
            out = stage(value, run)
            if isinstance(out, Decision):
                progress.stage, progress.decided_by = None, name
                return value, out
            value = out
            if isinstance(value, Parsed):
                progress.mail = value.mail
        return value, None

    def _record(
        self, run: MailRun, mail: object, decision: Decision, outcomes: list[InboxOutcome] | None = None
    ) -> ProcessResult:
        """The decision, recorded in the mail's transaction: its de-duplication key, the notifications
        its happenings call for, and the inbox row's outcome (with `outcomes`, added there for the
        caller to write later in the same transaction: nothing in a mail's processing reads it)."""
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
                hold=outcomes is not None,  # written by the batch with the others', at its end
            )
        if self.deps.notifier is not None and decision.happenings:
            self.deps.notifier.plan(session, decision.happenings, inbox_id=item.id)
        notes = [decision.detail, *([mail.collision] if mail.collision else [])]
        outcome = InboxOutcome(
            item.id,
            decision.outcome.value,
            decision.ticket_id,
            mail.mail.message_id,
            "; ".join(notes) or None,
        )
        if outcomes is not None:
            outcomes.append(outcome)
        else:
            mark_held_inbox_done(session, [outcome], worker=self.worker)
        return ProcessResult(item.id, decision.outcome, decision.ticket_id, decision.detail)

    def _transient(self, item: ClaimedItem, exc: TransientError, stage: str | None) -> ProcessResult:
        processing = self.deps.settings.processing
        if item.attempts >= processing.max_attempts:
            reason = f"gave up after {item.attempts} attempts: {exc}"
            return self._quarantine(item, reason, None, stage)
        delay = _backoff(item.attempts, processing.retry_base_seconds)
        self._log_outage(exc)
        at = utcnow() + delay  # kept as a time: written late, it is due no later than it would have been
        self._give_back(
            lambda: self.deps.inbox.retry_later(
                item.id, delay=max(at - utcnow(), timedelta(0)), error=str(exc), worker=self.worker
            )
        )
        return ProcessResult(item.id, Outcome.RETRY, None, f"{exc}; retry in {delay.total_seconds():.0f}s")

    def _give_back(self, write: Callable[[], None]) -> None:
        """Run a give-back now or, while the database does not take it, keep it for when it does
        (before the next claim), so the mail waits out no lease of a live worker."""
        if self._kept:  # in order: an earlier one is still waiting
            self._kept.append(write)
            return
        try:
            write()
        except TransientError as exc:
            self._log_outage(exc)
            self._kept.append(write)

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
        self._give_back(
            lambda: self.deps.inbox.quarantine(item.id, reason=reason, detail=detail, worker=self.worker)
        )
        return ProcessResult(item.id, Outcome.QUARANTINE, None, reason)

    def _log_outage(self, exc: Exception) -> None:
        if not self._outage_logged:
            # The message names the cause: "database unavailable: …", "blob store: …".
            log.error("processing held up, will retry: %s", exc)
            self._outage_logged = True


class _NoTransaction:
    """The session a stage run outside the transaction is given: using it is a mistake in
    OUTSIDE_TRANSACTION, said at once rather than writing outside the mail's transaction."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a stage in OUTSIDE_TRANSACTION used the session ({name})")


_NO_TRANSACTION: Any = _NoTransaction()


class _Replay(Exception):  # not an error: the batch is run again in savepoints
    """A mail of a batch run without savepoints failed: roll the batch back and run it again."""


RETRY_CAP_SECONDS = 3600.0  # a transient fault is retried at least once an hour


def _backoff(attempts: int, base_seconds: float) -> timedelta:
    """Capped exponential back-off with jitter (gateway/backoff.py), so a recovering database is
    not stampeded."""
    return timedelta(seconds=BackoffPolicy(base_seconds, RETRY_CAP_SECONDS).delay(attempts))
