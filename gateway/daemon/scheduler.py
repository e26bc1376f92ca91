"""The scheduler inside `serve`, a round of three jobs every few minutes:
- auto-close (SPEC §5): a ticket Resolved for `tickets.auto_close_days` with no mail since becomes
  Closed, with an event and a `status_changed` to the requester;
- escalation (SPEC §12, gateway/daemon/escalation.py): a first response overdue gets one `escalation`;
- the daily digest (SPEC §12, gateway/notify/digest.py) once `views.digest_at` has passed that day;
- IMAP reconciliation (SPEC §14, gateway/intake/imap_reconcile.py) every
  `processing.imap_reconcile_minutes`: reports mail the pollers missed (it takes nothing in; that is
  `ticketgate imap reconcile --take`, an operator's decision).

It checks every few minutes. With PostgreSQL and several nodes, one node is the scheduler: it holds
a session-level advisory lock (gateway/store/leader.py) that PostgreSQL drops when that node dies, and
the others ask for it every `LEADER_RETRY_SECONDS`, so one of them takes over within that time. Each
round also takes a transaction-level advisory lock (`pg_try_advisory_xact_lock`), so two rounds never
overlap even while a node that lost its connection has not noticed yet. On SQLite transactions begin
IMMEDIATE, which serialises writers anyway. `auto_close_days = 0` turns auto-close off. What must
happen once (an escalation, a day's digest) is also recorded in `done_once` in the job's own
transaction, so the database refuses a second one whatever the locks did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import ImapAccount, Settings
from gateway.daemon.escalation import escalate_overdue
from gateway.domain import EventKind, Status
from gateway.errors import TransientError
from gateway.notify.digest import queue_digest
from gateway.notify.planner import NotificationPlanner
from gateway.pipeline.happenings import Happening, StatusChanged
from gateway.pipeline.lifecycle import Trigger, next_status
from gateway.pipeline.processor import Notifier
from gateway.store import tickets as store
from gateway.store.db import unit_of_work
from gateway.store.leader import HeldLock, try_lock
from gateway.store.models import utcnow

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 300.0
# Any fixed 64-bit number that no other part of ticketgate uses as an advisory lock key.
AUTO_CLOSE_LOCK_KEY = 0x7467_6175_746F_636C  # "tgautocl"
SCHEDULER_LOCK_KEY = 0x7467_7363_6865_6431  # "tgsched1": the node that runs the scheduler
LEADER_RETRY_SECONDS = 15.0
ACTOR = "ticketgate"


class Scheduler:
    """The scheduler's jobs (`run_once`: auto-close, `escalate_once`, `digest_once`; `run_round` all
    three); `run` is the daemon's loop. Every job reads the time from `clock`, so tests move it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.notifier = notifier
        self.clock = clock
        self._outage_logged = False
        self._reconciled_at: float | None = None  # monotonic; None: not yet in this process

    def run_once(self) -> list[int]:
        """One round: the ids of the tickets it closed (none when another node holds the round)."""
        days = self.settings.tickets.auto_close_days
        if days <= 0:
            return []
        now = self.clock()
        closed: list[int] = []
        with unit_of_work(self.sessions) as session:
            if not _take_round(session):
                return []
            happenings: list[Happening] = []
            for ticket in store.tickets_due_for_auto_close(session, quiet_since=now - timedelta(days=days)):
                transition = next_status(Status(ticket.status), Trigger.AUTO_CLOSE)
                if not transition.changed:
                    continue
                ticket.status = transition.new.value
                ticket.updated_at = now
                store.add_event(
                    session,
                    ticket_id=ticket.id,
                    kind=EventKind.AUTO_CLOSED,
                    field="status",
                    old=transition.old.value,
                    new=transition.new.value,
                    actor=ACTOR,
                )
                happenings.append(StatusChanged(ticket.id, transition.old.value, transition.new.value, ACTOR))
                closed.append(ticket.id)
            if happenings and self.notifier is not None:
                # No mail caused this: there is no inbox row to name.
                self.notifier.plan(session, happenings, inbox_id=None)
        if closed:
            log.info("auto-closed %d ticket(s): %s", len(closed), ", ".join(map(str, closed)))
        return closed

    def escalate_once(self) -> list[int]:
        """Escalate the first responses now overdue; the ids of the tickets escalated."""
        now = self.clock()
        with unit_of_work(self.sessions) as session:
            if not _take_round(session):
                return []
            escalated = escalate_overdue(session, self.settings.response_targets, self.notifier, now=now)
        if escalated:
            log.info("escalated %d overdue ticket(s): %s", len(escalated), ", ".join(map(str, escalated)))
        return escalated

    def digest_once(self) -> list[str]:
        """Queue today's digest when it is due and no node sent it; the addresses it went to."""
        if self.settings.views.digest_at is None:
            return []
        if not isinstance(self.notifier, NotificationPlanner):
            return []  # nothing renders mail here (a processor built without notifications)
        with unit_of_work(self.sessions) as session:
            if not _take_round(session):
                return []
            rows = queue_digest(session, self.notifier, now=self.clock())
            sent_to = [row.to_address for row in rows]
        if sent_to:
            log.info("daily digest queued to %s", ", ".join(sent_to))
        return sent_to

    def reconcile_if_due(self) -> int | None:
        """Reconcile the IMAP mailboxes when `imap_reconcile_minutes` have passed since the last
        time (the first time that long after start-up); the number of unreconciled messages, None
        when not due."""
        minutes = self.settings.processing.imap_reconcile_minutes
        if minutes <= 0 or not self.settings.imap:
            return None
        now = time.monotonic()
        if self._reconciled_at is None:  # not at start-up: the pollers first take in what waited
            self._reconciled_at = now
            return None
        if now - self._reconciled_at < minutes * 60 - 1:
            return None
        self._reconciled_at = now
        from gateway.intake.imap import ImapPoller
        from gateway.intake.imap_reconcile import Reconciler
        from gateway.store.imap_state import ImapStateStore

        state = ImapStateStore(self.sessions.kw["bind"])
        size = self.settings.smtp.max_message_size

        def connect(account: ImapAccount) -> Any:
            return ImapPoller(account, state, max_message_size=size).connect()

        reports = Reconciler(state, minutes=minutes, connect=connect).run(self.settings.imap, take=False)
        return sum(len(report.found) for report in reports)

    def run_round(self) -> None:
        """The jobs, each in its own transaction (one failing does not undo the others)."""
        self.run_once()
        self.escalate_once()
        self.digest_once()
        self.reconcile_if_due()

    def run(
        self,
        stop: threading.Event,
        interval: float = CHECK_INTERVAL_SECONDS,
        leader_retry: float = LEADER_RETRY_SECONDS,
    ) -> None:
        """Until `stop` is set (the scheduler's one boundary): while this node holds the scheduler
        lock, a round now and every `interval` seconds; otherwise ask for the lock every `leader_retry`."""
        lock: HeldLock | None = None
        try:
            while not stop.is_set():
                wait = interval
                try:
                    lock = self._lead(lock)
                    if lock is None:
                        wait = leader_retry
                    else:
                        self.run_round()
                    if self._outage_logged:
                        log.info("scheduler: database reachable again")
                        self._outage_logged = False
                except TransientError as exc:
                    if not self._outage_logged:
                        log.error("scheduler: database unavailable, will retry: %s", exc)
                        self._outage_logged = True
                    wait = min(interval, leader_retry)
                except Exception:  # a bug must not stop the daemon; the next round tries again
                    log.exception("scheduler: round failed")
                stop.wait(wait)
        finally:
            if lock is not None:
                lock.release()

    def _lead(self, lock: HeldLock | None) -> HeldLock | None:
        """The scheduler lock if this node holds it or gets it now; None while another node has it."""
        if lock is not None:
            if lock.held():
                return lock
            log.warning("scheduler: lost the scheduler lock; asking for it again")
            lock.release()
        lock = try_lock(self.sessions.kw["bind"], SCHEDULER_LOCK_KEY)
        if lock is not None and self.sessions.kw["bind"].dialect.name == "postgresql":
            log.info("scheduler: this node runs the scheduler")
        return lock


AutoCloser = Scheduler  # its first name, when auto-close was its only job


def _take_round(session: Session) -> bool:
    """Whether this node does this round (always on SQLite; the advisory lock on PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    taken = session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": AUTO_CLOSE_LOCK_KEY})
    return bool(taken)
