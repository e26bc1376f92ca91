"""IMAP intake's own state: the per-folder checkpoint (UIDVALIDITY + last committed UID), the commit
that stores fetched mail and advances that checkpoint in one transaction, and the PostgreSQL
advisory lock that keeps one poller per mailbox however many nodes share the database.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain import Envelope
from gateway.errors import TransientError
from gateway.store.db import make_session_factory, unit_of_work
from gateway.store.inbox import add_rows
from gateway.store.leader import try_lock
from gateway.store.models import ImapCheckpoint, ImapPoll, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """Every UID up to `last_uid` of this UIDVALIDITY is in the inbox (or in the quarantine folder)."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class FetchedMail:
    uid: int
    raw: bytes


class MailboxLock(Protocol):
    """The right to poll one mailbox; `held()` is asked before each round, so a lost lock stops it."""

    def held(self) -> bool: ...

    def release(self) -> None: ...


def lock_key(identity: str) -> int:
    """A signed 64-bit advisory-lock key for a mailbox identity (stable across nodes and versions)."""
    digest = hashlib.sha256(b"ticketgate-imap\0" + identity.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ImapStateStore:
    """Checkpoints and the intake commit for IMAP; every method is its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)

    def checkpoint(self, account: str, folder: str) -> Checkpoint | None:
        with unit_of_work(self.sessions) as session:
            row = self._row(session, account, folder)
            return None if row is None else Checkpoint(row.uidvalidity, row.last_uid)

    def reset(self, account: str, folder: str, uidvalidity: int) -> None:
        """Start the folder over under a new UIDVALIDITY: no UID of it is known to be taken in."""
        with unit_of_work(self.sessions) as session:
            row = self._row(session, account, folder)
            if row is None:
                session.add(
                    ImapCheckpoint(account=account, folder=folder, uidvalidity=uidvalidity, last_uid=0)
                )
            else:
                row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, 0, utcnow()

    def commit(
        self, account: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail], envelope: Envelope
    ) -> list[int]:
        """Store `mails` in the inbox and move the checkpoint past them, all or nothing; the inbox ids.

        One transaction for both is what makes a crash before the IMAP move harmless: after a
        restart the checkpoint already says these UIDs are in, so they are moved, not fetched again.
        """
        with unit_of_work(self.sessions) as session:
            ids = add_rows(session, [(mail.raw, envelope) for mail in mails])
            if mails:
                self._advance(session, account, folder, uidvalidity, max(mail.uid for mail in mails))
            session.flush()
            return ids

    def advance(self, account: str, folder: str, uidvalidity: int, uid: int) -> None:
        """Move the checkpoint past `uid` without storing it (it went to the quarantine folder)."""
        with unit_of_work(self.sessions) as session:
            self._advance(session, account, folder, uidvalidity, uid)

    def record_poll(self, account: str, *, node: str, error: str | None = None) -> None:
        """Note that `account` was just polled by `node` (successfully, or failing with `error`).

        For `ticketgate status` only: a failure to write it is logged and otherwise ignored, so a
        database hiccup never stops intake (the inbox commit reports its own faults)."""
        now = utcnow()
        try:
            with unit_of_work(self.sessions) as session:
                row = session.get(ImapPoll, account)
                if row is None:
                    row = ImapPoll(account=account, node=node)
                    session.add(row)
                row.node = node
                if error is None:
                    row.last_poll_at = now
                else:
                    row.last_error, row.last_error_at = error[:2000], now
        except (TransientError, SQLAlchemyError) as exc:
            log.debug("imap %s: could not record the poll: %s", account, exc)

    def try_lock(self, identity: str) -> MailboxLock | None:
        """The lock on one mailbox, or None while another process holds it: a session-level
        advisory lock on a connection of its own (`gateway.store.leader`), so a node that dies drops
        it and another takes the mailbox; `held()` notices a lost connection. SQLite: always granted."""
        return try_lock(self.engine, lock_key(identity))

    @staticmethod
    def _row(session: Session, account: str, folder: str) -> ImapCheckpoint | None:
        return session.scalars(
            select(ImapCheckpoint).where(ImapCheckpoint.account == account, ImapCheckpoint.folder == folder)
        ).one_or_none()

    def _advance(self, session: Session, account: str, folder: str, uidvalidity: int, uid: int) -> None:
        row = self._row(session, account, folder)
        if row is None:
            session.add(ImapCheckpoint(account=account, folder=folder, uidvalidity=uidvalidity, last_uid=uid))
        elif row.uidvalidity != uidvalidity:
            row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, uid, utcnow()
        elif uid > row.last_uid:
            row.last_uid, row.updated_at = uid, utcnow()
