"""Hands a finished mail to where `outbound.relay` says: a folder of `.eml` files, or an SMTP relay.

`smtp://` upgrades with STARTTLS whenever the server offers it, and refuses to send a password
over a connection that is not encrypted; `smtps://` is TLS from the first byte. Every failure comes
out as `DeliveryError`, permanent (5xx) or not (4xx, a dropped connection, a refused socket), so
the sender decides between retry and failure in one place.
"""

from __future__ import annotations

import functools
import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gateway.config import OutboundSettings, RelayTarget


class DeliveryError(Exception):
    """The relay did not take the mail. `permanent`: a 5xx, trying again will not help."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None, outage: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.code = code
        self.outage = outage  # the relay itself is unreachable: every other mail would fail too


class Relay(Protocol):
    def send(self, *, mail_from: str, rcpt_to: str, raw: bytes, name: str) -> None: ...

    def describe(self) -> str: ...


class DirRelay:
    """One `.eml` file per mail (the embedded default, and what tests read)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"dir:{self.path}"

    def send(self, *, mail_from: str, rcpt_to: str, raw: bytes, name: str) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # As an MTA would at final delivery, the envelope is written in front of the mail.
            head = f"Return-Path: <{mail_from}>\r\nDelivered-To: {rcpt_to}\r\n".encode("ascii", "replace")
            # Written under a temporary name and renamed, so a reader never sees half a mail.
            fd, temporary = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".eml")
            with os.fdopen(fd, "wb") as handle:
                handle.write(head + raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path / f"{name}.eml")
        except OSError as exc:
            raise DeliveryError(f"cannot write to {self.path}: {exc}", permanent=False, outage=True) from exc


@dataclass(frozen=True)
class SmtpRelay:
    target: RelayTarget
    user: str | None = None
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    timeout: float = 30.0

    def describe(self) -> str:
        return f"{self.target.scheme}://{self.target.host}:{self.target.port}"

    def send(self, *, mail_from: str, rcpt_to: str, raw: bytes, name: str) -> None:
        context = self.tls_context or _default_tls_context()
        host, port = self.target.host or "localhost", self.target.port or 25
        try:
            if self.target.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=context)
            else:
                client = smtplib.SMTP(host, port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot connect to {self.describe()}: {exc}", permanent=False, outage=True
            ) from exc
        try:
            with client:
                self._deliver(client, context, mail_from=mail_from, rcpt_to=rcpt_to, raw=raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _reply_error(code, text) from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{self.describe()}: {exc}", permanent=False, outage=True) from exc

    def _deliver(
        self, client: smtplib.SMTP, context: ssl.SSLContext, *, mail_from: str, rcpt_to: str, raw: bytes
    ) -> None:
        client.ehlo()
        if self.target.scheme == "smtp":
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif self.user is not None:
                raise DeliveryError(
                    f"{self.describe()} offers no STARTTLS: the password is not sent in the clear",
                    permanent=False,
                    outage=True,
                )
        if self.user is not None and self.password is not None:
            try:
                client.login(self.user, self.password)
            except smtplib.SMTPException as exc:
                # A refused login is the relay's problem, not this mail's: retried, reported once.
                raise DeliveryError(
                    f"{self.describe()}: login refused: {exc}", permanent=False, outage=True
                ) from exc
        client.sendmail(mail_from, [rcpt_to], raw)


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
