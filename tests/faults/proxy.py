"""A TCP proxy on loopback that tests put between ticketgate and a server (PostgreSQL), to make the
network fail the way it does in production: `cut` (every connection reset at once and new ones
refused, as a database restart or fail-over), `delay` (each chunk held a while, as a slow link),
`blackhole` (connections stay open but nothing comes back, as a dropped route), and `pass`.

Why not toxiproxy: see docs/operations/delivery-promises.md ("The fault proxy"). In short, its
server is a Go binary that no package registry we use ships, and these four modes are all the
tests need.

The proxy runs an asyncio loop on a thread of its own, so a test drives it with plain calls;
each mode change has taken effect when the call returns (a cut has closed every connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.helpers import free_port

Mode = Literal["pass", "cut", "delay", "blackhole"]
CHUNK = 65536


@dataclass(eq=False)
class _Pair:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()  # an RST: the peer sees the connection reset, at once


class FaultProxy:
    """`with FaultProxy(port_of_server) as proxy:` clients connect to `proxy.port`; `proxy.cut()`,
    `proxy.delay(0.5)`, `proxy.blackhole()`, `proxy.pass_through()` switch modes."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.mode: Mode = "pass"
        self.delay_seconds = 0.0
        self.accepted = 0  # client connections accepted, whatever became of them
        self.refused = 0  # of them, closed at once because the proxy was cutting
        self._pairs: set[_Pair] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Close the listener and every connection; the thread ends."""
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- modes -----------------------------------------------------------------------------

    def pass_through(self) -> None:
        """Forward both ways, at once (the default)."""
        self._call(self._set("pass", 0.0))

    def cut(self) -> None:
        """Reset every open connection now, and every new one as it arrives, until another mode."""
        self._call(self._set("cut", 0.0))

    def delay(self, seconds: float) -> None:
        """Forward each chunk `seconds` late (both ways; order kept)."""
        self._call(self._set("delay", seconds))

    def blackhole(self) -> None:
        """Keep connections open and read what comes, but forward nothing (either way) and connect
        new clients to nothing: the peers wait for their own timeouts. What was swallowed is lost,
        as on a dropped route; another mode forwards what comes after."""
        self._call(self._set("blackhole", 0.0))

    @property
    def open_connections(self) -> int:
        return int(self._call(self._count()))

    @contextlib.contextmanager
    def outage(self, mode: Mode = "cut") -> Iterator[None]:
        """`with proxy.outage():` the server is away for the block, back after it."""
        self._call(self._set(mode, self.delay_seconds))
        try:
            yield
        finally:
            self.pass_through()

    # --- the loop's side -------------------------------------------------------------------

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.abort()
            for task in pair.tasks:
                task.cancel()
        self._pairs.clear()

    async def _count(self) -> int:
        return len(self._pairs)

    async def _set(self, mode: Mode, seconds: float) -> None:
        self.mode, self.delay_seconds = mode, seconds
        if mode == "cut":
            for pair in list(self._pairs):
                pair.abort()
            self._pairs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "cut":
            self.refused += 1
            writer.transport.abort()
            return
        pair = _Pair(writer)
        self._pairs.add(pair)
        early = b""  # what came once the route was back, before the upstream connection was there
        try:
            while self.mode == "blackhole":  # swallow what comes until the route is back
                early = await reader.read(CHUNK)
                if not early:
                    self._pairs.discard(pair)
                    writer.close()
                    return
                if self.mode == "blackhole":
                    early = b""
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._pairs.discard(pair)
            return
        if pair not in self._pairs:  # cut while connecting upstream
            up_writer.transport.abort()
            return
        pair.upstream = up_writer
        if early:
            up_writer.write(early)
        pair.tasks = [
            asyncio.ensure_future(self._pump(reader, up_writer, pair)),
            asyncio.ensure_future(self._pump(up_reader, writer, pair)),
        ]

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, pair: _Pair) -> None:
        try:
            while True:
                data = await source.read(CHUNK)
                if not data:
                    break
                if self.mode == "blackhole":
                    continue
                if self.mode == "delay" and self.delay_seconds > 0:
                    await asyncio.sleep(self.delay_seconds)
                if pair not in self._pairs:
                    return
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            # One side closed: close the other too (a half-open pair helps no test).
            if pair in self._pairs:
                self._pairs.discard(pair)
                for writer in (pair.client, pair.upstream):
                    if writer is not None:
                        with contextlib.suppress(OSError, RuntimeError):
                            writer.close()
