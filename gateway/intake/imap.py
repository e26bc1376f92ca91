"""IMAP intake: one poller per `[[imap]]` account takes mail from a folder into the inbox.

The order that makes it safe: fetch with `BODY.PEEK[]` (nothing is flagged), commit the raw bytes
to the inbox together with the folder's checkpoint (UIDVALIDITY + last UID), and only then move the
message to `processed_folder` (MOVE, or COPY + `\\Deleted` + UID EXPUNGE). A crash anywhere leaves
the message either uncommitted and still in the folder (fetched again) or committed and still in
the folder (the checkpoint says so: it is moved, not stored twice). Messages are taken strictly in
UID order, so the checkpoint never skips one; a message that cannot be taken in (over the size
limit, or its fetch failed `max_fetch_attempts` times, even by killing the connection) is moved to
`quarantine_folder` so the rest keep flowing. A new UIDVALIDITY voids the checkpoint: the folder is
taken in again and the processor's Message-ID + content dedup makes any copy a `duplicate`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.backoff import BackoffPolicy, FailureStreak
from gateway.config import ImapAccount
from gateway.domain import Envelope
from gateway.errors import TransientError
from gateway.intake.oauth2_token import OAuth2TokenSource, TokenState, TokenUnavailable
from gateway.mail.rawmail import message_id_of
from gateway.ops import metrics
from gateway.store.imap_state import Checkpoint, FetchedMail, MailboxLock

log = logging.getLogger(__name__)

DELETED = rb"\Deleted"


class ImapState(Protocol):
    """What the poller needs of the store (`gateway.store.imap_state.ImapStateStore` is one)."""

    def checkpoint(self, account: str, folder: str) -> Checkpoint | None: ...

    def reset(self, account: str, folder: str, uidvalidity: int) -> None: ...

    def commit(
        self, account: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail], envelope: Envelope
    ) -> list[int]: ...

    def advance(self, account: str, folder: str, uidvalidity: int, uid: int) -> None: ...

    def try_lock(self, identity: str) -> MailboxLock | None: ...

    def record_poll(self, account: str, *, node: str, error: str | None = None) -> None: ...


@dataclass(frozen=True)
class PollerTiming:
    """Delays and batch sizes; the defaults suit production, tests shorten them."""

    reconnect_base: float = 1.0  # first wait after a failure; doubles up to the cap, with jitter
    reconnect_cap: float = 120.0
    lock_retry: float = 15.0  # how often a standby node asks for the mailbox lock
    idle_refresh: float = 300.0  # re-issue IDLE this often (RFC 2177: servers may drop it after 30 min)
    idle_tick: float = 1.0  # how often an idling poller looks at its stop event
    socket_timeout: float = 60.0
    command_timeout: float = 60.0  # for password_command / oauth2_token_command
    token_timeout: float = 30.0  # for a request to the built-in OAuth2 token endpoint
    max_fetch_attempts: int = 3
    batch_mails: int = 25  # mails committed in one transaction and moved with one command
    batch_bytes: int = 16 * 1024 * 1024
    round_uids: int = 500  # UIDs handled per round, so no command line grows past server limits


class LoginFailed(Exception):
    """The credentials could not be obtained or were refused."""


class FetchFailed(Exception):
    """The server gave no body for a message it listed."""


class ConnectionDropped(Exception):
    """The server closed the connection while we were idling."""


# Everything that means "this connection or round failed; reconnect after a pause".
RECOVERABLE: tuple[type[BaseException], ...] = (
    IMAPClientError,
    OSError,  # socket errors, ssl.SSLError, timeouts
    LoginFailed,
    FetchFailed,
    ConnectionDropped,
    TransientError,
)


def mailbox_identity(account: ImapAccount) -> str:
    """What the cross-node lock is keyed on: the mailbox itself, whatever each node calls it."""
    return f"{account.host.lower()}:{account.port}:{account.username}:{account.folder}"


def run_secret_command(command: str, *, key: str, timeout: float) -> str:
    """The first line a `password_command` / `oauth2_token_command` prints (run by the shell)."""
    try:
        done = subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise LoginFailed(f"{key} did not finish within {timeout:.0f}s") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[:1]
        raise LoginFailed(f"{key} exited with {done.returncode}{': ' + detail[0] if detail else ''}")
    lines = done.stdout.strip().splitlines()
    if not lines or not lines[0].strip():
        raise LoginFailed(f"{key} printed nothing")
    return lines[0].strip()


class ImapPoller:
    """Takes one account's folder into the inbox until stopped; `run` is the thread's target."""

    def __init__(
        self,
        account: ImapAccount,
        state: ImapState,
        *,
        max_message_size: int,
        on_commit: Callable[[], None] = lambda: None,
        ssl_context: ssl.SSLContext | None = None,
        timing: PollerTiming | None = None,
        on_token: Callable[[TokenState], None] = lambda state: None,
    ) -> None:
        self.account = account
        self._state = state
        self._max_size = max_message_size
        self._on_commit = on_commit
        self._ssl_context = ssl_context
        self._timing = timing or PollerTiming()
        self._envelope = Envelope(mail_from="", rcpt_tos=(), source=f"imap:{account.name}")
        # Fetch attempts per (UIDVALIDITY, UID), kept across reconnects: a message whose fetch
        # makes the server drop the connection must still reach its limit.
        self._attempts: dict[tuple[int, int], int] = {}
        self._outage_logged = False
        self._stop = threading.Event()
        self._node = f"{socket.gethostname()}:{os.getpid()}"
        self._poll_recorded_at = -math.inf  # monotonic; a success is written at most every RECORD_EVERY
        self._failing = False
        self._tokens: OAuth2TokenSource | None = None
        if account.oauth2 is not None:
            self._tokens = OAuth2TokenSource(
                account.oauth2,
                timeout=self._timing.token_timeout,
                command_timeout=self._timing.command_timeout,
                on_change=on_token,
            )

    RECORD_EVERY = 30.0  # seconds between two records of a successful poll (status needs no more)

    def _record_poll(self, error: str | None = None) -> None:
        """The last poll (or error) for `ticketgate status`: at once on an error or a recovery, and
        otherwise at most every RECORD_EVERY seconds, so IDLE's ticks do not write to the database."""
        now = time.monotonic()
        if error is None and not self._failing and now - self._poll_recorded_at < self.RECORD_EVERY:
            return
        self._failing = error is not None
        self._poll_recorded_at = now
        self._state.record_poll(self.account.name, node=self._node, error=error)

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set: hold the mailbox lock, connect, take mail in, idle or wait."""
        self._stop = stop
        backoff = FailureStreak(BackoffPolicy(self._timing.reconnect_base, self._timing.reconnect_cap))
        standby_logged = False
        while not stop.is_set():
            try:
                lock = self._state.try_lock(mailbox_identity(self.account))
            except TransientError as exc:
                self._failed(backoff, stop, "cannot reach the database for the mailbox lock", exc)
                continue
            if lock is None:
                if not standby_logged:
                    log.info("imap %s: another node is polling this mailbox; standing by", self.account.name)
                    standby_logged = True
                stop.wait(self._timing.lock_retry)
                continue
            standby_logged = False
            try:
                self._run_locked(stop, lock, backoff)
            finally:
                lock.release()

    def _run_locked(self, stop: threading.Event, lock: MailboxLock, backoff: FailureStreak) -> None:
        while not stop.is_set():
            if not lock.held():
                log.warning("imap %s: lost the mailbox lock; asking for it again", self.account.name)
                return
            client: IMAPClient | None = None
            try:
                client = self.connect()
                self._prepare_folders(client)
                while not stop.is_set() and lock.held():
                    more = self.take_in(client)
                    metrics.imap_polled(self.account.name)
                    self._record_poll()
                    if backoff.failing:
                        log.info("imap %s: connected and taking mail in again", self.account.name)
                        backoff.reset()
                        self._outage_logged = False
                    if not more:
                        self._wait_for_mail(client, stop)
            except RECOVERABLE as exc:
                self._failed(backoff, stop, "connection or round failed", exc)
            except Exception as exc:  # the poller's one boundary: a bug must not stop intake for good
                log.exception("imap %s: unexpected error", self.account.name)
                self._failed(backoff, stop, "unexpected error", exc)
            finally:
                if client is not None:
                    _close_quietly(client)

    def _failed(self, backoff: FailureStreak, stop: threading.Event, what: str, exc: BaseException) -> None:
        delay = backoff.next_delay()
        self._record_poll(error=f"{what} ({type(exc).__name__}: {exc})")
        # An outage is logged once at WARNING; its repeats only at DEBUG.
        level = logging.DEBUG if self._outage_logged else logging.WARNING
        self._outage_logged = True
        log.log(
            level,
            "imap %s: %s (%s: %s); retrying in %.1fs",
            self.account.name,
            what,
            type(exc).__name__,
            exc,
            delay,
        )
        stop.wait(delay)

    # --- connecting ---------------------------------------------------------------------------

    def connect(self) -> IMAPClient:
        """A logged-in client (TLS, STARTTLS or plain; password, password_command or XOAUTH2)."""
        account = self.account
        context = self._ssl_context or ssl.create_default_context()
        timeout = self._timing.socket_timeout
        if account.tls == "ssl":
            client = IMAPClient(account.host, account.port, ssl=True, ssl_context=context, timeout=timeout)
        else:
            client = IMAPClient(account.host, account.port, ssl=False, timeout=timeout)
        try:
            if account.tls == "starttls":
                client.starttls(context)
            elif account.tls == "none" and not _is_loopback(account.host):
                log.warning('imap %s: tls = "none": the login crosses the network in clear', account.name)
            self._login(client)
        except BaseException:
            _close_quietly(client)
            raise
        return client

    def _login(self, client: IMAPClient) -> None:
        account = self.account
        timeout = self._timing.command_timeout
        try:
            if self._tokens is not None:
                try:
                    token = self._tokens.token()
                except TokenUnavailable as exc:
                    raise LoginFailed(f"no OAuth2 token: {exc}") from None
                try:
                    client.oauth2_login(account.username, token)
                except IMAPClientError:
                    self._tokens.forget()  # revoked or its rights changed: fetch a new one next time
                    raise
            elif account.oauth2_token_command is not None:
                token = run_secret_command(
                    account.oauth2_token_command, key="oauth2_token_command", timeout=timeout
                )
                client.oauth2_login(account.username, token)
            elif account.password_command is not None:
                password = run_secret_command(
                    account.password_command, key="password_command", timeout=timeout
                )
                client.login(account.username, password)
            else:
                client.login(account.username, account.password or "")
        except IMAPClientError as exc:
            raise LoginFailed(f"login as {account.username} refused: {exc}") from exc

    def _prepare_folders(self, client: IMAPClient) -> None:
        for folder in (self.account.processed_folder, self.account.quarantine_folder):
            if not client.folder_exists(folder):
                client.create_folder(folder)
                log.info("imap %s: created folder %r", self.account.name, folder)

    # --- one round ----------------------------------------------------------------------------

    def take_in(self, client: IMAPClient) -> bool:
        """Take the folder in: finish moves a crash left, then fetch new UIDs; True if more remain."""
        account = self.account
        selected = client.select_folder(account.folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        checkpoint = self._state.checkpoint(account.name, account.folder)
        if checkpoint is None or checkpoint.uidvalidity != uidvalidity:
            if checkpoint is not None:
                log.warning(
                    "imap %s: UIDVALIDITY of %r changed from %d to %d: taking the folder in again "
                    "(copies already taken in end as duplicates)",
                    account.name,
                    account.folder,
                    checkpoint.uidvalidity,
                    uidvalidity,
                )
            self._state.reset(account.name, account.folder, uidvalidity)
            checkpoint = Checkpoint(uidvalidity, 0)
        uids = sorted(int(uid) for uid in client.search("ALL"))
        limit = self._timing.round_uids
        committed = [uid for uid in uids if uid <= checkpoint.last_uid][:limit]
        if committed:
            # In the inbox already (the checkpoint says so) but not moved: a crash or a failed move.
            log.info("imap %s: moving %d message(s) taken in earlier", account.name, len(committed))
            self._move(client, committed, account.processed_folder)
        new = [uid for uid in uids if uid > checkpoint.last_uid]
        if new:
            self._take_new(client, uidvalidity, new[:limit])
        return len(uids) > limit

    def _take_new(self, client: IMAPClient, uidvalidity: int, uids: list[int]) -> None:
        sizes = client.fetch(uids, ["RFC822.SIZE"])
        batch: list[FetchedMail] = []
        batch_bytes = 0
        for uid in uids:
            if self._stop.is_set():
                break  # shutting down: what is committed gets moved below, the rest waits
            if uid not in sizes:
                continue  # expunged by someone else since the SEARCH
            size = int(sizes[uid].get(b"RFC822.SIZE", 0))
            key = (uidvalidity, uid)
            reason: str | None = None
            if size > self._max_size:
                reason = f"{size} bytes, over the limit of {self._max_size}"
            elif self._attempts.get(key, 0) >= self._timing.max_fetch_attempts:
                reason = f"fetch failed {self._attempts[key]} times"
            if reason is not None:
                self._commit(client, uidvalidity, batch)
                batch, batch_bytes = [], 0
                self._quarantine(client, uidvalidity, uid, reason)
                continue
            self._attempts[key] = self._attempts.get(key, 0) + 1
            try:
                raw = self._fetch(client, uid)
            except RECOVERABLE:
                # Keep what was fetched before it (committed; moved if the connection still works).
                self._commit_quietly(client, uidvalidity, batch)
                raise
            self._attempts.pop(key, None)
            batch.append(FetchedMail(uid, raw))
            batch_bytes += len(raw)
            if len(batch) >= self._timing.batch_mails or batch_bytes >= self._timing.batch_bytes:
                self._commit(client, uidvalidity, batch)
                batch, batch_bytes = [], 0
        self._commit(client, uidvalidity, batch)

    def _fetch(self, client: IMAPClient, uid: int) -> bytes:
        # BODY.PEEK[] leaves \Seen alone: nothing on the server changes until the mail is committed.
        response = client.fetch([uid], ["BODY.PEEK[]"])
        data = response.get(uid, {})
        raw = data.get(b"BODY[]")
        if not isinstance(raw, bytes):
            raise FetchFailed(f"the server gave no body for UID {uid}")
        return raw

    def _commit(self, client: IMAPClient, uidvalidity: int, batch: list[FetchedMail]) -> None:
        if not batch:
            return
        account = self.account
        ids = self._state.commit(account.name, account.folder, uidvalidity, batch, self._envelope)
        self._on_commit()
        for mail, inbox_id in zip(batch, ids, strict=True):
            log.info(
                "imap %s: UID %d taken in as inbox %d, Message-ID %s",
                account.name,
                mail.uid,
                inbox_id,
                message_id_of(mail.raw) or "(none)",
            )
        self._move(client, [mail.uid for mail in batch], account.processed_folder)

    def _commit_quietly(self, client: IMAPClient, uidvalidity: int, batch: list[FetchedMail]) -> None:
        """Commit, and move if the connection allows; a failed move is finished on the next round."""
        try:
            self._commit(client, uidvalidity, batch)
        except (IMAPClientError, OSError) as exc:
            log.debug("imap %s: move after commit failed (%s); done next round", self.account.name, exc)

    def _quarantine(self, client: IMAPClient, uidvalidity: int, uid: int, reason: str) -> None:
        account = self.account
        self._move(client, [uid], account.quarantine_folder)
        # Only after the move: until then the UID must stay "not taken in" for the checkpoint.
        self._state.advance(account.name, account.folder, uidvalidity, uid)
        self._attempts.pop((uidvalidity, uid), None)
        log.warning(
            "imap %s: UID %d not taken in (%s): moved to %r",
            account.name,
            uid,
            reason,
            account.quarantine_folder,
        )

    def _move(self, client: IMAPClient, uids: list[int], target: str) -> None:
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [DELETED], silent=True)  # only after COPY succeeded
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            # Without UIDPLUS, EXPUNGE also removes messages others flagged \Deleted in this folder.
            client.expunge()

    # --- waiting ------------------------------------------------------------------------------

    def _wait_for_mail(self, client: IMAPClient, stop: threading.Event) -> None:
        """Return when there may be new mail: an IDLE wake-up, or after `poll_interval`."""
        if not client.has_capability("IDLE"):
            stop.wait(self.account.poll_interval)
            return
        timing = self._timing
        client.idle()
        deadline = time.monotonic() + timing.idle_refresh
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            tick = min(timing.idle_tick, remaining)
            started = time.monotonic()
            responses = client.idle_check(timeout=tick)
            if not responses and time.monotonic() - started < tick / 2:
                # idle_check returns early and empty only when the socket hit EOF.
                raise ConnectionDropped("the server closed the connection during IDLE")
            metrics.imap_polled(self.account.name)
            self._record_poll()
            if _news(responses):
                break
        # Not in a `finally`: after a drop, DONE would fail and hide the real reason.
        client.idle_done()


def _news(responses: Sequence[Any]) -> bool:
    """Whether IDLE responses announce new mail (EXISTS) or the end of the session (BYE)."""
    for response in responses:
        if len(response) >= 2 and response[1] == b"EXISTS":
            return True
        if response and response[0] == b"BYE":
            raise ConnectionDropped(f"the server said BYE: {response!r}")
    return False


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _close_quietly(client: IMAPClient) -> None:
    try:
        client.logout()
    except (IMAPClientError, OSError, ValueError):
        with contextlib.suppress(IMAPClientError, OSError):
            client.shutdown()
