"""A real SMTP sink for outgoing mail (aiosmtpd on loopback): it captures what it accepts, and answers
each DATA with 250, 451 or 550 as the test scripts it. Optionally STARTTLS (or TLS from the first
byte) with a trustme certificate, and AUTH LOGIN/PLAIN with one user."""

from __future__ import annotations

import ssl
import threading
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers import free_port

ANSWERS = {
    250: "250 2.0.0 OK: queued",
    451: "451 4.3.0 Temporary local problem, try again later",
    550: "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
}


@dataclass(frozen=True)
class Captured:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    tls: bool
    authenticated: bool

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.captured: list[Captured] = []
        self.script: deque[int] = deque()
        self.default = 250
        self.attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts += 1
            code = self.script.popleft() if self.script else self.default
            if code == 250:
                self.captured.append(
                    Captured(
                        mail_from=envelope.mail_from,
                        rcpt_tos=tuple(envelope.rcpt_tos),
                        raw=bytes(envelope.original_content or envelope.content),
                        # STARTTLS sets session.ssl; TLS from the first byte shows on the transport.
                        tls=session.ssl is not None
                        or server.transport.get_extra_info("ssl_object") is not None,
                        authenticated=bool(session.authenticated),
                    )
                )
        return ANSWERS[code]


class SmtpSink:
    """`with SmtpSink() as sink:` a running sink; `sink.answer(451, 250)` scripts the next replies."""

    def __init__(
        self,
        *,
        port: int | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._handler = _Handler()
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs["tls_context"] = starttls
        if implicit_tls is not None:
            kwargs["ssl_context"] = implicit_tls
        if login is not None:
            user, password = login

            def authenticate(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                    user.encode(),
                    password.encode(),
                )
                return AuthResult(success=ok, handled=False)

            kwargs["authenticator"] = authenticate
            kwargs["auth_required"] = True
        self._controller = Controller(self._handler, hostname=self.host, port=self.port, **kwargs)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def answer(self, *codes: int) -> None:
        """The replies to the next DATA commands, in order; afterwards `default`."""
        with self._handler.lock:
            self._handler.script.extend(codes)

    def always(self, code: int) -> None:
        with self._handler.lock:
            self._handler.default = code

    @property
    def captured(self) -> list[Captured]:
        with self._handler.lock:
            return list(self._handler.captured)

    @property
    def attempts(self) -> int:
        """Every DATA the sink answered, whatever it answered."""
        with self._handler.lock:
            return self._handler.attempts
