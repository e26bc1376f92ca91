"""A real SMTP sink for outgoing mail (aiosmtpd on loopback): it captures what it accepts, and answers
each DATA with 250, 451 or 550 as the test scripts it, refuses chosen recipients at RCPT, and can
drop the connection at a chosen DATA (before or after taking the mail), and run a test's action
at a chosen DATA (`at_data`: a fault elsewhere at that moment). Optionally STARTTLS (or TLS
from the first byte) with a trustme certificate, and AUTH LOGIN/PLAIN with one user. It counts
connections, and per connection the STARTTLS, AUTH, RSET and QUIT commands and the mails taken, so
a test can tell how the client used each connection."""

from __future__ import annotations

import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

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
    connection: int = 0  # which connection it came over, counted from 1 in the order they opened

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Connection:
    """What one client connection did, as the sink saw it."""

    number: int
    starttls: int = 0
    auth: int = 0
    rsets: int = 0
    quit: bool = False
    mails: int = 0  # DATA answered 250


class _Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.captured: list[Captured] = []
        self.script: deque[int] = deque()
        self.default = 250
        self.attempts = 0
        self.refused: dict[str, int] = {}  # recipient -> the code RCPT answers
        self.drops: dict[int, bool] = {}  # DATA attempt number -> take the mail before dropping?
        self.connections: list[Connection] = []
        self.on_data: dict[int, Callable[[], None]] = {}  # DATA attempt number -> run once answered

    def opened(self, server: Any) -> None:
        with self.lock:
            server.sink_connection = Connection(len(self.connections) + 1)
            self.connections.append(server.sink_connection)

    def handle_STARTTLS(self, server: Any, session: Any, envelope: Any) -> bool:
        with self.lock:
            server.sink_connection.starttls += 1
        return True

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            code = self.refused.get(address.lower())
        if code is not None:
            return ANSWERS[code]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            server.sink_connection.rsets += 1
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            server.sink_connection.quit = True
        return "221 Bye"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts += 1
            drop = self.drops.pop(self.attempts, None)
            code = 250 if drop is not None else self.script.popleft() if self.script else self.default
            if code == 250 and drop is not False:
                connection: Connection = server.sink_connection
                connection.mails += 1
                self.captured.append(
                    Captured(
                        mail_from=envelope.mail_from,
                        rcpt_tos=tuple(envelope.rcpt_tos),
                        raw=bytes(envelope.original_content or envelope.content),
                        # STARTTLS sets session.ssl; TLS from the first byte shows on the transport.
                        tls=session.ssl is not None
                        or server.transport.get_extra_info("ssl_object") is not None,
                        authenticated=bool(session.authenticated),
                        connection=connection.number,
                    )
                )
            hook = self.on_data.pop(self.attempts, None)
        if hook is not None:
            hook()  # in the server's thread, decided but before the client hears the answer
        if drop is not None:
            # No reply: the client cannot tell whether the mail was taken (it was, if `drop`).
            server.transport.abort()
        return ANSWERS[code]


class _CountingSMTP(SMTP):
    """aiosmtpd's server, telling the handler of each new connection (not of the TLS layer that
    STARTTLS puts on an existing one)."""

    def connection_made(self, transport: Any) -> None:
        fresh = self.transport is None
        super().connection_made(transport)
        if fresh:
            self.event_handler.opened(self)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


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
        self._handler = handler = _Handler()
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
                with handler.lock:
                    server.sink_connection.auth += 1
                return AuthResult(success=ok, handled=False)

            kwargs["authenticator"] = authenticate
            kwargs["auth_required"] = True
        self._controller = _Controller(self._handler, hostname=self.host, port=self.port, **kwargs)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        with self._handler.lock:  # the controller's own check that the server answers is no client
            self._handler.connections.clear()
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

    def refuse(self, address: str, code: int) -> None:
        """RCPT TO `address` is answered `code` (451 or 550) until `accept(address)`."""
        with self._handler.lock:
            self._handler.refused[address.lower()] = code

    def accept(self, address: str) -> None:
        """RCPT TO `address` is accepted again."""
        with self._handler.lock:
            self._handler.refused.pop(address.lower(), None)

    def at_data(self, attempt: int, action: Callable[[], None]) -> None:
        """Run `action` at the `attempt`-th DATA (numbered as `attempts` counts them) once the sink
        has decided its answer (and taken the mail, if 250) but before the client hears it: a fault
        a test injects elsewhere at the moment the relay has the mail or refuses it."""
        with self._handler.lock:
            self._handler.on_data[attempt] = action

    def drop_at(self, *attempts: int, taken: bool = False) -> None:
        """At these DATA commands (numbered from 1 as `attempts` counts them), close the connection
        instead of answering; with `taken` the mail is captured first, as a server that took the
        mail and died before it said so."""
        with self._handler.lock:
            self._handler.drops.update(dict.fromkeys(attempts, taken))

    @property
    def connections(self) -> list[Connection]:
        """Every connection so far, in the order they opened."""
        with self._handler.lock:
            return [Connection(**vars(c)) for c in self._handler.connections]

    @property
    def captured(self) -> list[Captured]:
        with self._handler.lock:
            return list(self._handler.captured)

    @property
    def attempts(self) -> int:
        """Every DATA the sink answered, whatever it answered."""
        with self._handler.lock:
            return self._handler.attempts
