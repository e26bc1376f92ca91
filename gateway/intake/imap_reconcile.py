"""IMAP reconciliation (SPEC §14): each mailbox's watched folder and processed folder are compared
with the inbox by Message-ID, so mail that intake missed cannot sit unnoticed.

Two kinds of message are unreconciled:
- one left in the watched folder for longer than `processing.imap_reconcile_minutes` (the poller
  takes mail in within seconds; one still there is stuck: a poller down or standing by for good,
  a move that keeps failing);
- one in the processed folder whose Message-ID the inbox does not hold (moved there by a person,
  a rule on the server or another program, never taken in).

Each is reported: a WARNING log line, `ticketgate_imap_unreconciled{mailbox}`, and a row in
`imap_health` that `status` shows. `take=True` (`ticketgate imap reconcile --take`) takes them in:
a message the inbox does not hold is stored as a new inbox row (the processor's de-duplication makes
a copy that got in some other way a `duplicate`); one left in the watched folder is then moved to the
processed folder, as the poller would. Taking in is idempotent: a second run finds nothing, since the
inbox now holds every message it took and the watched folder no longer has them.

The processed folder is read back `lookback_days` (by INTERNALDATE, which MOVE keeps): a folder of
years would otherwise be read whole every few minutes. Messages without a Message-ID cannot be
compared and are counted apart (`no_message_id`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from imapclient import IMAPClient

from gateway.config import ImapAccount
from gateway.domain import Envelope
from gateway.mail.header_fields import message_id
from gateway.ops import metrics
from gateway.store.imap_health import ImapHealthStore, held_message_ids
from gateway.store.imap_state import FetchedMail, ImapStateStore
from gateway.store.inbox import add_rows

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 7
HEADER = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
CHUNK = 500


@dataclass(frozen=True)
class Unreconciled:
    folder: str
    uid: int
    message_id: str
    received_at: datetime | None
    why: str
    in_inbox: bool  # a stuck message already taken in (only its move is missing)

    def as_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "uid": self.uid,
            "message_id": self.message_id,
            "received_at": self.received_at.isoformat(timespec="seconds") if self.received_at else None,
            "why": self.why,
        }


@dataclass
class MailboxReport:
    mailbox: str
    found: list[Unreconciled] = field(default_factory=list)
    no_message_id: int = 0
    taken_in: list[int] = field(default_factory=list)  # new inbox row ids
    moved: int = 0
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "mailbox": self.mailbox,
            "unreconciled": [item.as_json() for item in self.found],
            "no_message_id": self.no_message_id,
            "taken_in": self.taken_in,
            "moved_to_processed": self.moved,
            "error": self.error,
        }


class Reconciler:
    """Reconciles the configured mailboxes; `connect` gives a logged-in client for an account."""

    def __init__(
        self,
        state: ImapStateStore,
        *,
        minutes: int,
        connect: Callable[[ImapAccount], IMAPClient],
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._state = state
        self._health = ImapHealthStore(state.engine)
        self._minutes = minutes
        self._connect = connect
        self._lookback_days = lookback_days
        self._clock = clock

    def run(self, accounts: tuple[ImapAccount, ...], *, take: bool) -> list[MailboxReport]:
        return [self.mailbox(account, take=take) for account in accounts]

    def mailbox(self, account: ImapAccount, *, take: bool) -> MailboxReport:
        """One mailbox: its report (with `error` set, and nothing recorded, when it was unreachable)."""
        report = MailboxReport(account.name)
        try:
            client = self._connect(account)
        except Exception as exc:  # any failure to log in is this mailbox's report, not a crash
            report.error = f"{type(exc).__name__}: {exc}"
            log.warning("imap %s: reconciliation could not connect: %s", account.name, report.error)
            return report
        try:
            self._compare(client, account, report)
            if take and report.found:
                self._take(client, account, report)
        except Exception as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            log.warning("imap %s: reconciliation failed: %s", account.name, report.error)
            return report
        finally:
            _logout(client)
        self._report(account, report, took=take)
        return report

    # --- comparing -----------------------------------------------------------------------------

    def _compare(self, client: IMAPClient, account: ImapAccount, report: MailboxReport) -> None:
        now = self._clock()
        stuck_before = now - timedelta(minutes=self._minutes)
        watched = self._listing(client, account.folder, criteria=["ALL"])
        since: list[Any] = ["ALL"]
        if self._lookback_days > 0:
            since = ["SINCE", (now - timedelta(days=self._lookback_days)).date()]
        processed = self._listing(client, account.processed_folder, criteria=since)
        candidates = [(account.folder, item) for item in watched if _before(item[2], stuck_before)]
        candidates += [(account.processed_folder, item) for item in processed]
        ids = [mid for _, (_, mid, _) in candidates if mid]
        held = held_message_ids(self._state.engine, ids)
        for folder, (uid, mid, received) in candidates:
            if not mid:
                report.no_message_id += 1
                continue
            if folder == account.folder:
                minutes = int((now - received).total_seconds() // 60) if received else self._minutes
                why = f"left in {folder} for {minutes} min"
            elif mid in held:
                continue
            else:
                why = f"in {folder} but not in the inbox"
            report.found.append(Unreconciled(folder, uid, mid, received, why, in_inbox=mid in held))

    @staticmethod
    def _listing(
        client: IMAPClient, folder: str, *, criteria: list[Any]
    ) -> list[tuple[int, str | None, datetime | None]]:
        """(UID, Message-ID, INTERNALDATE) of the folder's messages matching `criteria`."""
        if not client.folder_exists(folder):
            return []
        client.select_folder(folder, readonly=True)
        uids = sorted(int(uid) for uid in client.search(criteria))
        found: list[tuple[int, str | None, datetime | None]] = []
        for start in range(0, len(uids), CHUNK):
            fetched = client.fetch(
                uids[start : start + CHUNK], ["INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
            )
            for uid, data in sorted(fetched.items()):
                header = data.get(HEADER, b"") or b""
                value = header.decode("ascii", "replace").partition(":")[2] if header.strip() else ""
                received = data.get(b"INTERNALDATE")
                found.append((int(uid), message_id(" ".join(value.split())), _aware(received)))
        return found

    # --- taking in -----------------------------------------------------------------------------

    def _take(self, client: IMAPClient, account: ImapAccount, report: MailboxReport) -> None:
        envelope = Envelope(mail_from="", rcpt_tos=(), source=f"imap:{account.name}")
        for folder in (account.folder, account.processed_folder):
            items = [item for item in report.found if item.folder == folder]
            if not items:
                continue
            client.select_folder(folder, readonly=folder != account.folder)
            for item in items:
                if not item.in_inbox:
                    response = client.fetch([item.uid], ["BODY.PEEK[]"])
                    raw = response.get(item.uid, {}).get(b"BODY[]")
                    if not isinstance(raw, bytes):
                        continue  # gone since the listing
                    report.taken_in.extend(self._store(FetchedMail(item.uid, raw), envelope))
                    log.info(
                        "imap %s: reconciliation took %s from %s in as inbox %d",
                        account.name,
                        item.message_id,
                        folder,
                        report.taken_in[-1],
                    )
            if folder == account.folder:
                # Only after the inbox commit: a crash before the move leaves it for the next run,
                # which finds it in the inbox and only moves it.
                uids = [item.uid for item in items]
                if client.has_capability("MOVE"):
                    client.move(uids, account.processed_folder)
                else:
                    client.copy(uids, account.processed_folder)
                    client.add_flags(uids, [rb"\Deleted"], silent=True)
                    client.uid_expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()
                report.moved += len(uids)

    def _store(self, mail: FetchedMail, envelope: Envelope) -> list[int]:
        from gateway.store.db import unit_of_work

        with unit_of_work(self._state.sessions) as session:
            return add_rows(session, [(mail.raw, envelope)])

    # --- reporting -----------------------------------------------------------------------------

    def _report(self, account: ImapAccount, report: MailboxReport, *, took: bool) -> None:
        left = [] if took else report.found
        for item in report.found:
            log.warning(
                "imap %s: unreconciled message %s (UID %d): %s%s",
                account.name,
                item.message_id,
                item.uid,
                item.why,
                "; taken in" if took else "",
            )
        metrics.imap_unreconciled(account.name, len(left))
        self._health.record_reconcile(account.name, [item.as_json() for item in left])


def _before(moment: datetime | None, limit: datetime) -> bool:
    return moment is None or moment < limit


def _aware(moment: Any) -> datetime | None:
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if isinstance(moment, date):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return None


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # closing a connection that may already be gone
        log.debug("logout after reconciliation failed", exc_info=True)
