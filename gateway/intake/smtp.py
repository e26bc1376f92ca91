"""SMTP and LMTP intake: accept mail for our addresses only, and answer `250` once it is committed.

aiosmtpd speaks the protocol; this module decides what is ours (RCPT), enforces the limits
(size, recipients, connections in all and per client address, timeouts), offers STARTTLS when a
certificate is configured (and with `require_tls` refuses MAIL without it), hands the mail to the
group-commit writer, and stops cleanly: transactions already in DATA finish, every other session
hears `421`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, TLSSetupException
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession

from gateway.addresses import GatewayAddresses
from gateway.domain import Envelope
from gateway.errors import ConfigError, TransientError
from gateway.intake.writer import InboxWriter
from gateway.mail.rawmail import message_id_of
from gateway.ops import metrics
from gateway.tls import server_tls_context

log = logging.getLogger(__name__)

IDENT = "ticketgate"

# The replies this intake gives, in one place (enhanced status codes per RFC 3463).
REPLY_OK = "250 OK"
REPLY_NO_SUCH_USER = "550 5.1.1 Recipient address rejected: not a mailbox here"
REPLY_BAD_ADDRESS = "553 5.1.3 Address too long or not valid UTF-8"
REPLY_TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
REPLY_TOO_BIG = "552 5.3.4 Message too big for system"
REPLY_LINE_TOO_LONG = "500 5.5.2 Line too long"
REPLY_EMPTY = "554 5.6.0 Message is empty"
REPLY_TRY_LATER = "451 4.3.0 Mail not stored, please try again later"
REPLY_TOO_MANY_CONNECTIONS = "421 4.3.2 Too many connections, try again later"
REPLY_TOO_MANY_FROM_PEER = "421 4.7.0 Too many connections from your address, try again later"
REPLY_TLS_REQUIRED = "530 5.7.0 Must issue a STARTTLS command first"
REPLY_SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
REPLY_DATA_TIMEOUT = "421 4.4.2 Timeout: the message was not received within the time allowed"
REPLY_IDLE_TIMEOUT = "421 4.4.2 Timeout: no command received, closing the connection"

# aiosmtpd's own replies for the size limits lack enhanced codes; these are rewritten on the way out.
_AIOSMTPD_REWRITES = {
    "552 Error: Too much mail data": REPLY_TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": REPLY_TOO_BIG,
    "500 Line too long (see RFC5321 4.5.3.1.6)": REPLY_LINE_TOO_LONG,
}
# Of those, the ones that end a DATA phase: in LMTP they must be given once per recipient.
_DATA_END_REPLIES = frozenset({"552 Error: Too much mail data", "500 Line too long (see RFC5321 4.5.3.1.6)"})

# RFC 5321 4.5.3.1.3: a path is at most 256 octets; the inbox column holds 998.
MAX_PATH_OCTETS = 256
# RFC 5321 asks for 1000-octet lines but also that receivers be lenient: real senders emit
# single-line HTML far longer, and rejecting it would bounce a customer's mail.
MAX_LINE_OCTETS = 1024 * 1024


class SmtpListenerConfig(Protocol):
    """What the listener needs; `gateway.config.SmtpSettings` and `SmtpLimits` both fit."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def lmtp(self) -> bool: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def max_recipients(self) -> int: ...
    @property
    def max_connections(self) -> int: ...
    @property
    def command_timeout(self) -> float: ...
    @property
    def data_timeout(self) -> float: ...
    @property
    def max_connections_per_ip(self) -> int: ...
    @property
    def tls_certificate(self) -> str | None: ...
    @property
    def tls_key(self) -> str | None: ...
    @property
    def require_tls(self) -> bool: ...


@dataclass(frozen=True)
class SmtpLimits:
    """Listener settings with SPEC §2 defaults, for callers without a config object (tests, tools)."""

    host: str = "127.0.0.1"
    port: int = 2525
    lmtp: bool = False
    max_message_size: int = 25 * 1024 * 1024
    max_recipients: int = 50
    max_connections: int = 100
    command_timeout: float = 300.0
    data_timeout: float = 600.0
    max_connections_per_ip: int = 20
    tls_certificate: str | None = None
    tls_key: str | None = None
    require_tls: bool = False


def _acceptable_path(address: str) -> bool:
    try:
        encoded = address.encode("utf-8")  # surrogates from undecodable bytes fail here
    except UnicodeEncodeError:
        return False
    return len(encoded) <= MAX_PATH_OCTETS


class _ScannedCheaply:
    """aiosmtpd builds its tables of commands (`smtp_*`), hooks (`handle_*`) and AUTH mechanisms
    (`auth_*`) by scanning `dir()` of every new session and of its handler, fetching each of some
    two hundred attributes: a fifth of the CPU of taking a mail. Listing just those names, found
    once per class, gives it the same tables at a fraction of the cost."""

    _scanned_names: ClassVar[dict[type, list[str]]] = {}

    def __dir__(self) -> list[str]:
        cls = type(self)
        names = _ScannedCheaply._scanned_names.get(cls)
        if names is None:
            names = [name for name in dir(cls) if name.startswith(("smtp_", "handle_", "auth_"))]
            _ScannedCheaply._scanned_names[cls] = names
        return names


class IntakeHandler(_ScannedCheaply):
    """aiosmtpd hooks: who may receive, and the durable store behind `250`."""

    def __init__(
        self,
        addresses: GatewayAddresses,
        writer: InboxWriter,
        *,
        max_recipients: int,
        lmtp: bool,
        require_tls: bool = False,
    ) -> None:
        self.addresses = addresses
        self.writer = writer
        self.max_recipients = max_recipients
        self.source = "lmtp" if lmtp else "smtp"
        self.require_tls = require_tls

    async def handle_MAIL(
        self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope, address: str, options: list[str]
    ) -> str:
        # RFC 3207: the session is re-created after STARTTLS with `ssl` set; until then, no mail.
        # Checked here rather than by aiosmtpd's require_starttls, which knows no LHLO (LMTP).
        if self.require_tls and session.ssl is None:
            return REPLY_TLS_REQUIRED
        # `<>` is the null sender (bounces): kept as "" in the inbox envelope.
        mail_from = "" if address == "<>" else address
        if not _acceptable_path(mail_from):
            return REPLY_BAD_ADDRESS
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return REPLY_OK

    async def handle_RCPT(
        self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope, address: str, options: list[str]
    ) -> str:
        if not self.addresses.is_ours(address):
            log.info("%s: refused recipient %s (not ours; never relayed)", _peer(session), address)
            return REPLY_NO_SUCH_USER
        if not _acceptable_path(address):
            return REPLY_BAD_ADDRESS
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return REPLY_TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return REPLY_OK

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        if isinstance(server, _IntakeSession):
            server.data_complete()
        raw = envelope.original_content or b""
        recipients = tuple(envelope.rcpt_tos)
        if not raw.strip():
            return self._per_recipient(recipients, lambda _rcpt: REPLY_EMPTY)
        mail_from = envelope.mail_from or ""
        stored = Envelope(
            mail_from="" if mail_from == "<>" else mail_from, rcpt_tos=recipients, source=self.source
        )
        try:
            with metrics.accepting():
                inbox_id = await self.writer.store(raw, stored)
        except TransientError as exc:
            log.debug("%s: answered 451, mail not stored: %s", _peer(session), exc)
            return self._per_recipient(recipients, lambda _rcpt: REPLY_TRY_LATER)
        log.info(
            "inbox id %d stored from %s via %s: <%s> -> %s, %d bytes, Message-ID %s",
            inbox_id,
            _peer(session),
            self.source,
            stored.mail_from,
            ",".join(recipients),
            len(raw),
            message_id_of(raw),
            extra={"inbox_id": inbox_id, "message_id": message_id_of(raw)},
        )
        if self.source == "lmtp":
            return self._per_recipient(
                recipients, lambda rcpt: f"250 2.0.0 <{rcpt}> Ok: queued as {inbox_id}"
            )
        return f"250 2.0.0 Ok: queued as {inbox_id}"

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # A client that could not agree on TLS (too old a version, a broken handshake):
            # aiosmtpd closes the connection; nothing was accepted, so nothing is lost.
            log.info("STARTTLS handshake failed: %r", error.__cause__)
            return REPLY_TRY_LATER
        # Whatever went wrong, nothing was acknowledged: a temporary failure makes the sender retry,
        # where aiosmtpd's default `500` would make it bounce the mail.
        log.error("SMTP session error: %r", error, exc_info=error)
        return REPLY_TRY_LATER

    def _per_recipient(self, recipients: tuple[str, ...], reply: Callable[[str], str]) -> str:
        """SMTP answers DATA once; LMTP once per accepted recipient, in RCPT order (RFC 2033)."""
        if self.source != "lmtp":
            return reply("")
        return "\r\n".join(reply(rcpt) for rcpt in recipients)


def _address_of(peer: Any) -> str:
    """The client's IP address from a peername (host, port[, flow, scope]); str() of anything else."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


def _peer(session: SmtpSession | None) -> str:
    peer = session.peer if session is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class _IntakeSession(_ScannedCheaply, SMTP):
    """One SMTP connection, known to its SmtpServer so it can be limited and shut down politely."""

    line_length_limit = MAX_LINE_OCTETS
    # aiosmtpd parses every MAIL and RCPT path with the full RFC 5322 parser (and defines a class
    # on each call); the same few paths recur — RCPT is nearly always our own address — so the
    # results are remembered. Keyed by the path and the local-part limit its answer depends on.
    _parsed_paths: ClassVar[dict[tuple[str, int], tuple[str | None, str | None]]] = {}
    _PARSED_PATHS_KEPT = 4096

    def __init__(self, handler: IntakeHandler, *, owner: SmtpServer, data_timeout: float, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self._owner = owner
        self._data_timeout = data_timeout
        self.in_data = False  # between the DATA command and its reply (what a shutdown waits for)
        self._receiving = False  # between the DATA command and the final dot (data_timeout runs)
        self.client_address = ""  # the peer's IP, for the per-address count

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        key = (arg, self.local_part_limit)
        parsed = self._parsed_paths.get(key)
        if parsed is None:
            parsed = super()._getaddr(arg)
            if len(self._parsed_paths) >= self._PARSED_PATHS_KEPT:
                self._parsed_paths.clear()
            self._parsed_paths[key] = parsed
        return parsed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._owner.stopping:  # accepted in the instant before the listener closed
            self.say_goodbye()

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._owner.forget(self)

    async def smtp_DATA(self, arg: str) -> None:
        # `smtp.data_timeout` bounds the whole DATA phase (SPEC §15): aiosmtpd's one timer is set
        # here and nothing resets it while the bytes come in, so a client trickling a byte a
        # second cannot hold a connection slot for longer than that. When the mail is whole,
        # `data_complete` puts the command timeout back for the commit. A timer that fires in DATA
        # answers `421 4.4.2` (`_timeout_cb`).
        self.in_data = self._receiving = True
        self._reset_timeout(self._data_timeout)
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = self._receiving = False
        if self._owner.stopping:
            self.say_goodbye()
        elif self.transport is not None:
            self._reset_timeout()

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("250-AUTH"):
            return  # aiosmtpd offers its AUTH mechanisms after STARTTLS; we take no logins
        if isinstance(status, str) and status in _AIOSMTPD_REWRITES:
            replacement = _AIOSMTPD_REWRITES[status]
            if status in _DATA_END_REPLIES and isinstance(self, LMTP) and self.envelope is not None:
                replacement = "\r\n".join([replacement] * max(1, len(self.envelope.rcpt_tos)))
            status = replacement
        metrics.smtp_replies(status)
        await super().push(status)

    def data_complete(self) -> None:
        """The final dot arrived: the DATA deadline no longer applies; the commit runs under the
        command timeout (a client that went away meanwhile hears nothing, and retries)."""
        self._receiving = False
        if self.transport is not None:
            self._reset_timeout()

    def _timeout_cb(self) -> None:
        """aiosmtpd's timer fired: say why (`421 4.4.2`, RFC 5321 4.5.3.2), count it, then close."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            reply = REPLY_DATA_TIMEOUT if self._receiving else REPLY_IDLE_TIMEOUT
            log.info("%s: %s", _peer(self.session), reply)
            metrics.smtp_replies(reply)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(reply.encode("ascii") + b"\r\n")
        super()._timeout_cb()

    def say_goodbye(self) -> None:
        """Tell the client we are going away (`421`) and close; no wait on a client not reading."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        assert isinstance(transport, asyncio.WriteTransport)
        metrics.smtp_replies(REPLY_SHUTTING_DOWN)
        transport.write(REPLY_SHUTTING_DOWN.encode("ascii") + b"\r\n")
        transport.close()


class _LmtpIntakeSession(_IntakeSession, LMTP):
    """The same session speaking LMTP (LHLO, one DATA reply per recipient)."""


class _Admission(asyncio.Protocol):
    """Every new connection's first protocol: it learns the client's address, which the factory
    cannot, and either refuses the connection with one `421` line instead of a greeting, or hands
    the transport to a new SMTP session. Deciding here, one connection at a time on the loop,
    keeps the counts exact even when many connections are accepted in one loop turn."""

    def __init__(self, owner: SmtpServer) -> None:
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        peer = transport.get_extra_info("peername")
        refusal = self._owner.refusal_for(peer)
        if refusal is not None:
            metrics.smtp_replies(refusal)  # counted like every other reply (SPEC §15)
            transport.write(refusal.encode("ascii") + b"\r\n")
            transport.close()
            return
        session = self._owner.new_session(peer)
        transport.set_protocol(session)
        session.connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        pass  # only a refused connection ends while this is its protocol


class SmtpServer:
    """A running SMTP/LMTP listener; `stop()` shuts it down cleanly."""

    def __init__(
        self,
        config: SmtpListenerConfig,
        handler: IntakeHandler,
        *,
        hostname: str,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.lmtp = config.lmtp
        self.stopping = False
        self.host = config.host
        self.port = config.port
        self._handler = handler
        self._hostname = hostname
        self._sessions: set[_IntakeSession] = set()
        self._per_address: Counter[str] = Counter()
        self._tls_context = tls_context
        self._all_gone = asyncio.Event()
        self._all_gone.set()
        self._server: asyncio.Server | None = None

    @property
    def serving(self) -> bool:
        """Listening and taking connections (not yet stopping): what /readyz asks of intake."""
        return not self.stopping and self._server is not None and self._server.is_serving()

    @property
    def connection_count(self) -> int:
        return len(self._sessions)

    def connections_from(self, address: str) -> int:
        """Sessions open from one client IP address (what `max_connections_per_ip` counts)."""
        return self._per_address.get(address, 0)

    @property
    def transactions_in_data(self) -> int:
        """Sessions between their DATA command and its reply: what a shutdown waits for."""
        return sum(1 for session in self._sessions if session.in_data)

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._new_connection, self.config.host, self.config.port)
        sockname = self._server.sockets[0].getsockname()
        self.port = int(sockname[1])
        log.info(
            "%s intake listening on %s:%d (max %d bytes, %d recipients, %d connections, %d per address; "
            "STARTTLS %s)",
            "LMTP" if self.lmtp else "SMTP",
            self.host,
            self.port,
            self.config.max_message_size,
            self.config.max_recipients,
            self.config.max_connections,
            self.config.max_connections_per_ip,
            ("required" if self.config.require_tls else "offered") if self._tls_context else "not offered",
        )

    def _new_connection(self) -> asyncio.Protocol:
        return _Admission(self)

    def refusal_for(self, peer: Any) -> str | None:
        """The `421` a new connection from `peer` gets instead of a greeting; None: serve it."""
        if self.stopping:
            return REPLY_SHUTTING_DOWN
        if len(self._sessions) >= self.config.max_connections:
            log.warning("refused a connection: %d connections open already", len(self._sessions))
            return REPLY_TOO_MANY_CONNECTIONS
        address = _address_of(peer)
        if self._per_address[address] >= self.config.max_connections_per_ip:
            log.warning(
                "refused a connection from %s: %d connections from that address open already",
                address,
                self._per_address[address],
            )
            return REPLY_TOO_MANY_FROM_PEER
        return None

    def new_session(self, peer: Any) -> _IntakeSession:
        session_class = _LmtpIntakeSession if self.lmtp else _IntakeSession
        session = session_class(
            self._handler,
            owner=self,
            data_timeout=self.config.data_timeout,
            data_size_limit=self.config.max_message_size,
            enable_SMTPUTF8=True,
            hostname=self._hostname,
            ident=IDENT,
            timeout=self.config.command_timeout,
            tls_context=self._tls_context,
            loop=asyncio.get_running_loop(),
        )
        session.client_address = _address_of(peer)
        self._sessions.add(session)
        self._per_address[session.client_address] += 1
        self._all_gone.clear()
        return session

    def forget(self, session: _IntakeSession) -> None:
        if session not in self._sessions:
            return  # aiosmtpd may report a connection lost twice (after a failed STARTTLS)
        self._sessions.remove(session)
        self._per_address[session.client_address] -= 1
        if self._per_address[session.client_address] <= 0:
            del self._per_address[session.client_address]
        if not self._sessions:
            self._all_gone.set()

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting; transactions in DATA get up to `grace` seconds to finish, others get `421`."""
        if self.stopping:
            return
        self.stopping = True
        if self._server is not None:
            self._server.close()
        in_data = 0
        for session in list(self._sessions):
            if session.in_data:
                in_data += 1
            else:
                session.say_goodbye()
        log.info(
            "intake stopping: %d session(s) told 421, %d in DATA given %gs",
            len(self._sessions) - in_data,
            in_data,
            grace,
        )
        try:
            await asyncio.wait_for(self._all_gone.wait(), timeout=grace)
        except TimeoutError:
            log.warning(
                "intake stop: %d session(s) still open after %gs, closing them", len(self._sessions), grace
            )
            for session in list(self._sessions):
                if isinstance(session.transport, asyncio.Transport):
                    session.transport.abort()
            # abort() reports connection_lost on the next loop turn; give it that turn.
            await asyncio.sleep(0)
        if self._server is not None:
            await self._server.wait_closed()
        log.info("intake stopped")


async def start_smtp(
    config: SmtpListenerConfig,
    addresses: GatewayAddresses,
    writer: InboxWriter,
    *,
    hostname: str | None = None,
) -> SmtpServer:
    """Listen on `config.host:config.port` (port 0: any free one, see `SmtpServer.port`).

    `writer` must be started; the caller closes it after `SmtpServer.stop()`, so that mails
    still in DATA at shutdown are committed before the process exits.
    """
    tls_context = None
    if config.tls_certificate and config.tls_key:
        try:
            tls_context = server_tls_context(config.tls_certificate, config.tls_key)
        except ValueError as exc:  # the files changed since the config was checked
            raise ConfigError("smtp.tls_certificate", str(exc)) from exc
    handler = IntakeHandler(
        addresses,
        writer,
        max_recipients=config.max_recipients,
        lmtp=config.lmtp,
        require_tls=config.require_tls and tls_context is not None,
    )
    # Resolved once: aiosmtpd would otherwise call getfqdn() (a DNS lookup) on every connection.
    server = SmtpServer(config, handler, hostname=hostname or socket.getfqdn(), tls_context=tls_context)
    await server._listen()
    return server
