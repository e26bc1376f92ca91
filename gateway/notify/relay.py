"""Hands finished mail to where `outbound.relay` says: a folder of `.eml` files, or an SMTP relay.

The sender hands over the mails of one claimed batch in one *session* (`relay.session()`): the SMTP
relay opens one connection for the batch (EHLO, STARTTLS, AUTH once) instead of one per mail, and
the folder relay makes a batch's files durable together (one directory sync for the lot). A
session's `send` hands over one mail and raises for that mail alone; `commit` makes every mail
handed over since the last commit durable, and only then does the sender count them as sent.

`smtp://` upgrades with STARTTLS whenever the server offers it, and refuses to send a password
over a connection that is not encrypted; `smtps://` is TLS from the first byte. Every failure comes
out as `DeliveryError`, permanent (5xx) or not (4xx, a dropped connection, a refused socket), so
the sender decides between retry and failure in one place.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.config import OutboundSettings, RelayTarget

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The relay did not take the mail. `permanent`: a 5xx, trying again will not help."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None, outage: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.outage = outage  # the relay itself is unreachable: every other mail would fail too


@dataclass(frozen=True)
class Outgoing:
    """One mail to hand over: its envelope, its bytes, and a name unique to it (the outbox id,
    which the folder relay uses as the file name, so a mail sent again replaces its own file)."""

    mail_from: str
    rcpt_to: str
    raw: bytes
    name: str


class RelaySession(Protocol):
    """The mails of one batch, handed over on one connection (or into one folder sync)."""

    def send(self, mail: Outgoing) -> None:
        """Hand over one mail; a `DeliveryError` concerns this mail alone, unless it says `outage`."""
        ...

    def commit(self) -> None:
        """Make every mail handed over since the last commit durable. Raises `DeliveryError` when
        that fails; then none of those mails may be counted as sent."""
        ...


class Relay(Protocol):
    def session(self) -> AbstractContextManager[RelaySession]:
        """A session for one batch; leaving it closes the connection (QUIT) or discards the files
        of mails never committed."""
        ...

    def describe(self) -> str: ...


def send_one(relay: Relay, mail: Outgoing) -> None:
    """One mail in a session of its own: handed over and made durable, or `DeliveryError`."""
    with relay.session() as session:
        session.send(mail)
        session.commit()


# --- a folder of .eml files -------------------------------------------------------------------


class DirRelay:
    """One `.eml` file per mail (the embedded default, and what tests read)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"dir:{self.path}"

    def session(self) -> _DirSession:
        return _DirSession(self.path)

    def send(self, *, mail_from: str, rcpt_to: str, raw: bytes, name: str) -> None:
        send_one(self, Outgoing(mail_from, rcpt_to, raw, name))


class _DirSession:
    """Files of one batch: each written under a temporary name as it is handed over; at `commit`
    every one is fsynced (several at once), renamed to its final name, and the folder is fsynced
    once, so the renames are durable too. A reader never sees half a mail, and a mail counted as
    sent survives a power cut (before sessions the renames were never synced).

    Measured against one file at a time (write, fsync, rename per mail; `bench/relay_cost.py`,
    docs/performance/index.md): the fsyncs dominate, one journal commit each when they run one after
    another, so syncing the batch's files together is what makes it cheaper; the folder is made
    once per batch instead of once per mail.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._made = False
        self._pending: list[tuple[int, Path, Path]] = []  # open file, temporary name, final name

    def __enter__(self) -> _DirSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._discard()

    def send(self, mail: Outgoing) -> None:
        try:
            if not self._made:
                self._path.mkdir(parents=True, exist_ok=True)
                self._made = True
            # As an MTA would at final delivery, the envelope is written in front of the mail.
            head = f"Return-Path: <{mail.mail_from}>\r\nDelivered-To: {mail.rcpt_to}\r\n".encode(
                "ascii", "replace"
            )
            # The name is the mail's own and this thread's: no other writer uses it, so no random
            # name has to be found for it (as mkstemp does, at a cost measured per mail).
            temporary = self._path / f".tmp-{mail.name}-{os.getpid()}-{threading.get_ident()}.eml"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, head + mail.raw)
            except BaseException:
                _remove([(fd, temporary)])
                raise
        except OSError as exc:
            raise self._outage(exc) from exc
        self._pending.append((fd, temporary, self._path / f"{mail.name}.eml"))

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        renamed = 0
        try:
            try:
                _fsync_all([fd for fd, _, _ in pending])
            finally:
                for fd, _, _ in pending:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            for _, temporary, final in pending:
                os.replace(temporary, final)
                renamed += 1
            _fsync_folder(self._path)
        except OSError as exc:
            for _, temporary, _ in pending[renamed:]:
                with contextlib.suppress(OSError):
                    temporary.unlink()
            raise self._outage(exc) from exc

    def _discard(self) -> None:
        """Close and remove the files of mails not committed: they were never delivered."""
        pending, self._pending = self._pending, []
        _remove([(fd, temporary) for fd, temporary, _ in pending])

    def _outage(self, exc: OSError) -> DeliveryError:
        return DeliveryError(f"cannot write to {self._path}: {exc}", permanent=False, outage=True)


def _remove(files: list[tuple[int, Path]]) -> None:
    for fd, temporary in files:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            temporary.unlink()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


SYNC_THREADS = 4  # fsyncs of one batch in flight at once (1: one after another)
_sync_pool: tuple[int, ThreadPoolExecutor] | None = None  # the pool, and the process it belongs to
_sync_pool_lock = threading.Lock()


def _fsync_all(fds: list[int]) -> None:
    """fsync every file, several at once. Each fsync of a new file costs a commit of the file
    system's journal; fsyncs that wait together share one (ext4's jbd2 commits them as a group),
    so a batch's wall time falls to a fraction (`bench/relay_cost.py`, docs/performance/index.md) for
    the same CPU. Returns once every one has finished, raising the first failure."""
    if SYNC_THREADS <= 1 or len(fds) == 1:
        for fd in fds:
            os.fsync(fd)
        return
    pool = _syncing_pool()
    futures = [pool.submit(os.fsync, fd) for fd in fds]
    wait(futures)  # every one, even after a failure: the files are closed next
    for future in futures:
        future.result()


def _syncing_pool() -> ThreadPoolExecutor:
    global _sync_pool
    with _sync_pool_lock:
        if _sync_pool is None or _sync_pool[0] != os.getpid():  # a forked child has no threads
            _sync_pool = (os.getpid(), ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="relay-fsync"))
        return _sync_pool[1]


def _fsync_folder(path: Path) -> None:
    """Makes the renames into `path` durable. A file system that cannot sync a directory
    (EINVAL, as some network ones answer) offers nothing stronger: its renames are as durable as
    it makes them."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


# --- an SMTP relay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpRelay:
    target: RelayTarget
    user: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    def describe(self) -> str:
        return f"{self.target.scheme}://{self.target.host}:{self.target.port}"

    def session(self) -> _SmtpSession:
        return _SmtpSession(self)

    def send(self, *, mail_from: str, rcpt_to: str, raw: bytes, name: str) -> None:
        send_one(self, Outgoing(mail_from, rcpt_to, raw, name))


class _SmtpSession:
    """The mails of one batch over one connection, opened at the first mail: EHLO, STARTTLS and
    AUTH once for the batch instead of once per mail, QUIT when the session ends.

    A 4xx or 5xx for one mail (at MAIL, RCPT or DATA) fails that mail alone: smtplib resets the
    transaction (RSET) and the next mail goes over the same connection, or over a new one when the
    server closed it (`421`). A connection that drops while a mail is under way is opened again
    once per session and that mail sent again on it (so the relay may get it twice if the drop
    came after it took the mail: delivery is at least once); a second drop, or a connection that
    cannot be opened, is an outage as it always was, and the sender stops the round.
    """

    def __init__(self, relay: SmtpRelay) -> None:
        self._relay = relay
        self._client: smtplib.SMTP | None = None
        self._reconnected = False

    def __enter__(self) -> _SmtpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, mail: Outgoing) -> None:
        relay = self._relay
        try:
            self._send(mail)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _reply_error(code, text) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise DeliveryError(f"{relay.describe()}: {exc}", permanent=False, outage=True) from exc
        except BaseException:
            self._drop()  # in an unknown state: the next mail starts on a new connection
            raise
        finally:
            if self._client is not None and self._client.sock is None:
                self._client = None  # smtplib closed it (a 421): the next mail opens another

    def commit(self) -> None:
        """Nothing to do: a relay that answered `250` has taken the mail."""

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    def _send(self, mail: Outgoing) -> None:
        client = self._client or self._connect()
        try:
            client.sendmail(mail.mail_from, [mail.rcpt_to], mail.raw)
        except OSError as exc:
            # smtplib's errors are OSErrors too: a reply is not a drop, a lost connection is.
            if isinstance(exc, smtplib.SMTPException) and not isinstance(exc, smtplib.SMTPServerDisconnected):
                raise
            self._drop()
            if self._reconnected:
                raise
            self._reconnected = True
            log.info("%s: connection lost (%s); sending again on a new one", self._relay.describe(), exc)
            self._connect().sendmail(mail.mail_from, [mail.rcpt_to], mail.raw)

    def _connect(self) -> smtplib.SMTP:
        relay = self._relay
        context = relay.tls_context or _default_tls_context()
        host, port = relay.target.host or "localhost", relay.target.port or 25
        try:
            if relay.target.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=relay.timeout, context=context)
            else:
                client = smtplib.SMTP(host, port, timeout=relay.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot connect to {relay.describe()}: {exc}", permanent=False, outage=True
            ) from exc
        try:
            self._greet(client, context)
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def _greet(self, client: smtplib.SMTP, context: ssl.SSLContext) -> None:
        relay = self._relay
        client.ehlo()
        if relay.target.scheme == "smtp":
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif relay.user is not None:
                raise DeliveryError(
                    f"{relay.describe()} offers no STARTTLS: the password is not sent in the clear",
                    permanent=False,
                    outage=True,
                )
        if relay.user is not None and relay.password is not None:
            try:
                client.login(relay.user, relay.password)
            except smtplib.SMTPException as exc:
                # A refused login is the relay's problem, not this mail's: retried, reported once.
                raise DeliveryError(
                    f"{relay.describe()}: login refused: {exc}", permanent=False, outage=True
                ) from exc

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    """Built once: loading the system's CA certificates took ~125 ms, per notification when it
    was built for each (one context serves every connection and thread)."""
    return ssl.create_default_context()


def _reply_error(code: int, text: bytes | str) -> DeliveryError:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return DeliveryError(f"{code} {' '.join(words.split())}", permanent=500 <= code < 600, code=code)


def make_relay(outbound: OutboundSettings, *, tls_context: ssl.SSLContext | None = None) -> Relay:
    target = outbound.relay_target
    if target.scheme == "dir":
        return DirRelay(target.path or "./outgoing")
    return SmtpRelay(target, user=outbound.user, password=outbound.password, tls_context=tls_context)
