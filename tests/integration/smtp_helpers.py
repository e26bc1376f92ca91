"""Test helpers for the SMTP intake: a real intake server on its own event-loop thread, a TCP proxy
that can cut a database off for real, and small smtplib conveniences."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from gateway.addresses import GatewayAddresses
from gateway.intake.smtp import SmtpLimits, SmtpServer, start_smtp
from gateway.intake.writer import InboxSink, InboxWriter
from tests.helpers import free_port

T = TypeVar("T")

ADDRESSES = ("support@smilepass.example", "billing@smilepass.example")

_QUEUED_AS = re.compile(rb"queued as (\d+)")


def queued_id(reply: bytes) -> int:
    """The inbox id in a `250 2.0.0 Ok: queued as N` reply."""
    match = _QUEUED_AS.search(reply)
    assert match is not None, f"no inbox id in reply {reply!r}"
    return int(match.group(1))


def make_mail(subject: str, body: str, *, message_id: str | None = None) -> bytes:
    """A small RFC 5322 mail with CRLF line ends, as an MTA would send it."""
    lines = [
        "From: Customer <customer@example.org>",
        "To: support@smilepass.example",
        f"Subject: {subject}",
        "Date: Mon, 04 Mar 2024 10:00:00 +0000",
    ]
    if message_id is not None:
        lines.append(f"Message-ID: <{message_id}>")
    lines += [
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    text = "\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n"
    return text.encode("utf-8")


class ThreadedIntake:
    """`start_smtp` + `InboxWriter` on a private event loop thread, driven from synchronous tests."""

    def __init__(
        self,
        inbox: InboxSink,
        limits: SmtpLimits | None = None,
        *,
        addresses: tuple[str, ...] = ADDRESSES,
        max_batch_mails: int = 64,
    ) -> None:
        self.limits = limits or SmtpLimits(host="127.0.0.1", port=0)
        self._inbox = inbox
        self._addresses = GatewayAddresses(addresses)
        self._max_batch_mails = max_batch_mails
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp-test-loop", daemon=True)
        self.server: SmtpServer | None = None
        self.writer: InboxWriter | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    @property
    def host(self) -> str:
        return self.limits.host

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result(timeout=60)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def start(self) -> ThreadedIntake:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.writer = InboxWriter(self._inbox, max_batch_mails=self._max_batch_mails)
        await self.writer.start()
        self.server = await start_smtp(self.limits, self._addresses, self.writer, hostname="mx.test")

    def stop_in_background(self, grace: float) -> concurrent.futures.Future[None]:
        """Begin the daemon's shutdown (what SIGTERM does) without waiting for it."""
        return self.submit(self._stop(grace))

    async def _stop(self, grace: float) -> None:
        assert self.server is not None and self.writer is not None
        await self.server.stop(grace)
        await self.writer.close()

    def close(self, grace: float = 5.0) -> None:
        if self._thread.is_alive():
            if self.server is not None and not self.server.stopping:
                self.run(self._stop(grace))
            elif self.writer is not None:
                self.run(self.writer.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> ThreadedIntake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class TcpProxy:
    """A loopback TCP forwarder that can be closed (connections cut, port refusing) and reopened
    on the same port: a database going away and coming back, for real."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._open = threading.Event()

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # A port of free_port's: while it is closed, no other test can be given it.
        self.port = self.port or free_port()
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._open.set()
        self._spawn(self._accept_loop, listener)

    def close(self) -> None:
        """Refuse new connections and cut every open one."""
        self._open.clear()
        with self._lock:
            doomed = list(self._sockets)
            self._sockets.clear()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = [t for t in self._threads if t.is_alive()]
        for sock in doomed:
            sock.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._open.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if not self._open.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def proxied(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    proxy.open()
    try:
        yield proxy
    finally:
        proxy.close()
