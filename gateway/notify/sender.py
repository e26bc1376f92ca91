"""Delivers queued notifications: claims due outbox rows, hands them to the relay, and records the
outcome (sent; 4xx or connection trouble → capped exponential back-off with jitter; 5xx → failed;
past its deadline → dead: time decides, not a count of tries). The one exception boundary of sending.

Each claimed batch is handed to the relay in one session (one SMTP connection, one folder sync;
see gateway/notify/relay.py), and its mails count as sent only once the session has made them
durable. What happens to each notification is decided per mail, as when each had a connection of
its own.

An outage (relay unreachable, folder unwritable) is logged once when it starts and once when it
ends, and stops the round: the other mails would meet the same wall.

An outcome the database does not take (it is down, its disk is full) is kept in memory
(`_Unrecorded`) and written before this sender claims anything again: a mail the relay took is
recorded as sent late, never sent again, and a claim is given back as soon as the store answers
rather than when its lease runs out. A sender whose own node's heartbeat has gone stale claims
nothing until it beats again (gateway/store/nodes.py): the other nodes could take over whatever it
claimed then.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from gateway.backoff import BackoffPolicy
from gateway.config import NotificationSettings
from gateway.errors import TransientError
from gateway.notify.blob_parts import fill_blob_parts
from gateway.notify.relay import DeliveryError, Outgoing, Relay, RelaySession
from gateway.ops import metrics
from gateway.store import outbox
from gateway.store.blobs import BlobStore
from gateway.store.db import unit_of_work
from gateway.store.models import utcnow
from gateway.store.nodes import DEAD_AFTER, OwnHeartbeatStale

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=10)
CLAIM_BATCH = 16  # notifications claimed per transaction and sent in one relay session, well within the lease
SETTLE_EVERY = 16  # sent notifications recorded per transaction, at most ...
SETTLE_SECONDS = 0.25  # ... and no later than this after the first of them went
MIN_ROUND_SECONDS = 0.1  # a woken sender's rounds start at least this long after it went idle


class _SentRows:
    """Notifications delivered but not yet recorded as sent."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, datetime]] = []
        self._first_at = 0.0

    def add(self, outbox_id: int, at: datetime) -> None:
        if not self._rows:
            self._first_at = time.monotonic()
        self._rows.append((outbox_id, at))

    def __len__(self) -> int:
        return len(self._rows)

    def due(self) -> bool:
        return len(self._rows) >= SETTLE_EVERY or (
            bool(self._rows) and time.monotonic() - self._first_at >= SETTLE_SECONDS
        )

    def take(self) -> list[tuple[int, datetime]]:
        rows, self._rows = self._rows, []
        return rows


class _Unrecorded:
    """What happened that the database has not taken yet: mails the relay took (`sent`), retry and
    final outcomes (`writes`), claims given back untried (`released`), and whether a claim's
    transaction failed (`lost_claims`: its COMMIT may have happened all the same, leaving rows
    claimed that nobody here holds). Written in one transaction, before the next claim."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, datetime]] = []
        self.writes: list[Callable[[Session], None]] = []
        self.released: list[int] = []
        self.lost_claims = False

    def __bool__(self) -> bool:
        return bool(self.sent or self.writes or self.released or self.lost_claims)

    def __len__(self) -> int:
        return len(self.sent) + len(self.writes) + len(self.released)

    def write(self, session: Session, *, worker: str, now: datetime) -> int:
        """Everything kept, in the caller's transaction; the number of claims found lost."""
        if self.sent:
            outbox.mark_sent_many(session, self.sent, must_exist=False)
        for write in self.writes:
            write(session)
        outbox.release_claims(session, self.released, worker=worker, now=now)
        # Last: every row this sender still holds now is one it does not know it holds.
        return outbox.release_all_claims(session, worker=worker, now=now) if self.lost_claims else 0


@dataclass(frozen=True)
class SendResult:
    outbox_id: int
    status: str  # sent, retry, failed, dead
    detail: str = ""
    outage: bool = False  # the relay itself was unreachable: the round stops here


class Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> bool: ...


def _unexpected(exc: Exception) -> DeliveryError:
    return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)


def backoff(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> timedelta:
    """The wait after a notification's `attempts`-th failed try: gateway/backoff.py's policy."""
    return timedelta(seconds=BackoffPolicy(base, cap).delay(attempts, rng))


class Sender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        relay: Relay,
        policy: NotificationSettings,
        *,
        worker: str,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        node_id: int | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs  # where the screenshots a staff notification names are read from
        self.node_id = node_id  # the `nodes` row of this serve: its claims are taken over if it dies
        self.relay = relay
        self.policy = policy
        self.worker = worker
        self.clock = clock
        self.rng = rng or random.Random()
        self._outage: str | None = None  # what is down, while it is down
        self._unrecorded = _Unrecorded()
        self._stale: str | None = None  # why this node claims nothing, while its heartbeat is stale
        # Since when the database has answered without a break (monotonic); None while it does not.
        # Other nodes' claims are taken over only after DEAD_AFTER of that: after an outage every
        # node looks dead for a moment, and each must get to beat (and record what it sent) first.
        self._reachable_since: float | None = time.monotonic() - DEAD_AFTER.total_seconds()
        # Whether the last `send_due` ended on a claim that found fewer rows due than it asked for
        # (or none): `run` then waits for a wake-up instead of claiming again at once.
        self.drained = False

    def send_due(self, limit: int = 100) -> list[SendResult]:
        """Try each due row once (up to `limit`); stops early when the relay or database is down.

        Sent rows are recorded as sent together, in one transaction per `SETTLE_EVERY` mails or
        `SETTLE_SECONDS`, whichever comes first (checked after each batch, and before a batch that
        would take the unrecorded past `SETTLE_EVERY`): a crash in between sends at most those
        again (delivery is at least once either way), and a burst costs a commit per batch, not
        per mail.
        """
        results: list[SendResult] = []
        sent = _SentRows()
        self.drained = False
        try:
            while len(results) < limit:
                if self._unrecorded:
                    # This round's sent ones first (or among the kept): a lost claim given back
                    # must never be one the relay already has.
                    self._settle(sent)
                    if not self._record_unrecorded():
                        break  # the store is still away: nothing is claimed before it has these
                asked = min(CLAIM_BATCH, limit - len(results))
                batch = self._claim(asked)
                # Fewer than asked for: nothing else was due when the claim looked. Another claim
                # now would find nothing and still cost a transaction (on SQLite a turn on the
                # write lock, which intake's `250` may be waiting for); what is queued after this
                # claim wakes the sender again (`run`).
                self.drained = len(batch) < asked
                if not batch:
                    break
                if len(sent) + len(batch) > SETTLE_EVERY:
                    self._settle(sent)
                done = self._send_batch(batch, sent)
                results += done
                if sent.due():
                    self._settle(sent)
                if any(result.outage for result in done):
                    return results
                if self.drained:
                    break
        finally:
            self._settle(sent)
        return results

    def run(self, stop: threading.Event, idle_poll: float = 1.0, wake: Waitable | None = None) -> None:
        """The daemon's sending loop: drain what is due, then wait until woken (`wake`: rows were
        queued; gateway/store/outbox_wake.py), for at most `idle_poll`, or until stopped (whoever
        sets `stop` sets `wake` too)."""
        while not stop.is_set():
            results = self.send_due()
            outage = any(result.outage for result in results)
            if results and not outage and not self.drained:
                continue  # the last claim was full: more may be due at once
            if outage or wake is None:
                # The relay is down: the back-off of each row decides when it is tried again, and
                # new mail would only meet the same wall.
                stop.wait(max(idle_poll, 5.0) if outage else idle_poll)
                continue
            idle_since = time.monotonic()
            if wake.wait(idle_poll):
                # Under a backlog every processing commit wakes it: rounds at most every
                # MIN_ROUND_SECONDS claim several commits' mail together (and leave SQLite's write
                # lock to the processors); at low load the pause has long passed.
                stop.wait(max(0.0, idle_since + MIN_ROUND_SECONDS - time.monotonic()))

    def _claim(self, limit: int) -> list[outbox.ClaimedNotification]:
        take_over = (
            self._reachable_since is not None
            and time.monotonic() - self._reachable_since >= DEAD_AFTER.total_seconds()
        )
        try:
            with unit_of_work(self.sessions) as session:
                claimed = outbox.claim_due(
                    session,
                    worker=self.worker,
                    lease=CLAIM_LEASE,
                    now=self.clock(),
                    limit=limit,
                    node_id=self.node_id,
                    take_over=take_over,
                )
        except OwnHeartbeatStale as exc:
            self._reachable()
            if self._stale is None:
                log.warning("%s: claiming no notifications until it beats again", exc)
            self._stale = str(exc)
            return []
        except TransientError as exc:
            self._unrecorded.lost_claims = True  # its COMMIT may have happened all the same
            self._unreachable(exc)
            return []
        self._reachable()
        if self._stale is not None:
            log.info("node heartbeat fresh again: claiming notifications (was: %s)", self._stale)
            self._stale = None
        return claimed

    def _release(self, outbox_ids: list[int]) -> None:
        try:
            with unit_of_work(self.sessions) as session:
                outbox.release_claims(session, outbox_ids, worker=self.worker, now=self.clock())
        except TransientError as exc:  # given back as soon as the store answers
            self._unrecorded.released += outbox_ids
            self._unreachable(exc)
            return
        self._reachable()

    def _settle(self, sent: _SentRows) -> None:
        rows = sent.take()
        if not rows:
            return
        try:
            with unit_of_work(self.sessions) as session:
                outbox.mark_sent_many(session, rows, must_exist=False)
        except TransientError as exc:
            # The relay has these: recorded as sent once the store answers, never sent again.
            self._unrecorded.sent += rows
            self._unreachable(exc)
            return
        self._reachable()

    def _record_unrecorded(self) -> bool:
        """Write what the store did not take when it happened; False while it still does not."""
        kept = len(self._unrecorded)
        try:
            with unit_of_work(self.sessions) as session:
                lost = self._unrecorded.write(session, worker=self.worker, now=self.clock())
        except TransientError as exc:
            self._unreachable(exc)
            return False
        self._unrecorded = _Unrecorded()
        self._reachable()
        log.info(
            "database answers again: recorded %d outcome(s) kept meanwhile, gave back %d lost claim(s)",
            kept, lost,
        )  # fmt: skip
        return True

    def _send_batch(self, batch: list[outbox.ClaimedNotification], sent: _SentRows) -> list[SendResult]:
        """One relay session for a claimed batch. Each mail's failure is recorded as it happens;
        the mails the relay took are sent once the session has made them durable (a failure to do
        so is recorded for each of them). After an outage the rest go back untried. The results
        are in the batch's order."""
        outcomes: list[SendResult | None] = []  # None: handed over, sent once committed
        with self.relay.session() as session:
            for claimed in batch:
                outcome = self._hand_over(session, claimed)
                outcomes.append(outcome)
                if outcome is not None and outcome.outage:
                    break
            handed = [claimed for claimed, outcome in zip(batch, outcomes, strict=False) if outcome is None]
            failure = self._commit(session) if handed else None
        if len(outcomes) < len(batch):  # the rest would meet the same wall: due again at once, untried
            self._release([later.id for later in batch[len(outcomes) :]])
        results: list[SendResult] = []
        for claimed, outcome in zip(batch, outcomes, strict=False):
            if outcome is None and failure is None:
                sent.add(claimed.id, self.clock())
                outcome = SendResult(claimed.id, "sent", "")
            elif outcome is None:
                assert failure is not None
                outcome = self._record_failure(claimed.id, claimed.attempts, claimed.deadline, failure)
            metrics.notification(claimed.template, outcome.status)
            results.append(outcome)
        return results

    def _hand_over(self, session: RelaySession, claimed: outbox.ClaimedNotification) -> SendResult | None:
        """Hands one mail to the session: None when the relay took it, else its recorded failure."""
        outbox_id, attempts, deadline, raw = claimed.id, claimed.attempts, claimed.deadline, claimed.raw
        try:
            if self.blobs is not None:
                raw = fill_blob_parts(raw, self.blobs, outbox_id=outbox_id)
            session.send(Outgoing(claimed.envelope_from, claimed.to_address, raw, f"{outbox_id:08d}"))
        except DeliveryError as exc:
            return self._record_failure(outbox_id, attempts, deadline, exc)
        except Exception as exc:  # the one boundary: an unexpected fault is retried, never lost
            log.exception("outbox %d: unexpected error while sending", outbox_id)
            return self._record_failure(outbox_id, attempts, deadline, _unexpected(exc))
        self._up()
        return None

    def _commit(self, session: RelaySession) -> DeliveryError | None:
        """Makes the mails handed over durable; the error that stopped it, if any."""
        try:
            session.commit()
        except DeliveryError as exc:
            return exc
        except Exception as exc:  # the one boundary, as for a mail
            log.exception("unexpected error while making a batch durable")
            return _unexpected(exc)
        return None

    def _record_failure(
        self, outbox_id: int, attempts: int, deadline: datetime, exc: DeliveryError
    ) -> SendResult:
        error = str(exc)
        now = self.clock()
        if exc.outage:
            self._down(error)
        else:
            self._up()
        if exc.permanent:
            log.warning("outbox %d: refused for good: %s", outbox_id, error)
            return self._record(
                outbox_id,
                "failed",
                error,
                lambda s: outbox.mark_final(s, outbox_id, status="failed", error=error),
            )
        if now >= deadline:
            log.warning(
                "outbox %d: dead past its deadline, after %d attempts: %s", outbox_id, attempts, error
            )
            final = f"past its deadline: {error}"
            return self._record(
                outbox_id,
                "dead",
                final,
                lambda s: outbox.mark_final(s, outbox_id, status="dead", error=final),
            )
        delay = backoff(
            attempts, base=self.policy.retry_base_seconds, cap=self.policy.retry_max_seconds, rng=self.rng
        )
        at = min(now + delay, deadline)
        if not exc.outage:
            log.info("outbox %d: %s; retry in %.0fs", outbox_id, error, delay.total_seconds())
        result = self._record(
            outbox_id, "retry", error, lambda s: outbox.mark_retry(s, outbox_id, at=at, error=error)
        )
        return SendResult(result.outbox_id, result.status, result.detail, outage=exc.outage)

    def _record(
        self, outbox_id: int, status: str, detail: str, write: Callable[[Session], None]
    ) -> SendResult:
        try:
            with unit_of_work(self.sessions) as session:
                write(session)
        except TransientError as exc:  # kept, and written before anything is claimed again
            self._unrecorded.writes.append(write)
            self._unreachable(exc)
        else:
            self._reachable()
        return SendResult(outbox_id, status, detail)

    def _unreachable(self, exc: TransientError) -> None:
        self._reachable_since = None
        self._down(f"database: {exc}")

    def _reachable(self) -> None:
        if self._reachable_since is None:
            self._reachable_since = time.monotonic()

    def _down(self, what: str) -> None:
        if self._outage is None:
            log.error("outbound mail held up, will retry: %s", what)
        self._outage = what

    def _up(self) -> None:
        if self._outage is not None:
            log.info("outbound mail flowing again (was: %s)", self._outage)
            self._outage = None
