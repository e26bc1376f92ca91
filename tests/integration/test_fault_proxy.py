"""The fault proxy (tests/faults/proxy.py) does what the fault tests rely on: it forwards bytes
both ways; a cut resets open connections at once and refuses new ones until it is lifted; a delay
holds each chunk; a blackhole keeps connections open and answers nothing. Against a real echo
server on loopback, and against the real PostgreSQL through SQLAlchemy as ticketgate uses it."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.errors import TransientError
from gateway.store.db import make_engine, make_session_factory, unit_of_work
from tests.faults.proxy import FaultProxy
from tests.helpers import free_port


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: int) -> Iterator[FaultProxy]:
    with FaultProxy(echo) as running:
        yield running


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=2)


def round_trip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def closed_by_peer(sock: socket.socket) -> bool:
    """The connection was reset or closed: a read ends at once instead of timing out."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_it_forwards_both_ways_also_large_payloads_and_many_connections(proxy: FaultProxy) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: several chunks each way
    with connect(proxy) as sock:
        assert round_trip(sock, b"hello") == b"hello"
        assert round_trip(sock, big) == big
    sockets = [connect(proxy) for _ in range(20)]
    try:
        for n, sock in enumerate(sockets):
            assert round_trip(sock, f"conn {n}".encode()) == f"conn {n}".encode()
    finally:
        for sock in sockets:
            sock.close()


def test_a_cut_resets_open_connections_refuses_new_ones_and_lifting_it_lets_them_through(
    proxy: FaultProxy,
) -> None:
    with connect(proxy) as before:
        assert round_trip(before, b"ping") == b"ping"
        started = time.monotonic()
        proxy.cut()
        assert closed_by_peer(before)
        assert time.monotonic() - started < 1.0  # at once, not after a timeout
    with connect(proxy) as during:  # the listener still accepts, then resets
        assert closed_by_peer(during)
    assert proxy.refused >= 1 and proxy.open_connections == 0
    proxy.pass_through()
    with connect(proxy) as after:
        assert round_trip(after, b"back") == b"back"


def test_a_delay_holds_each_chunk_and_keeps_the_bytes(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.delay(0.3)
        started = time.monotonic()
        assert round_trip(sock, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.55  # held on the way there and on the way back
        proxy.pass_through()
        started = time.monotonic()
        assert round_trip(sock, b"fast") == b"fast"
        assert time.monotonic() - started < 0.25


def test_a_blackhole_answers_nothing_but_keeps_connections_open(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert round_trip(sock, b"one") == b"one"
        proxy.blackhole()
        sock.settimeout(0.5)
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        assert proxy.open_connections == 1  # not closed: the peer waits for its own timeout
    with connect(proxy) as fresh:  # accepted, never answered
        fresh.settimeout(0.5)
        fresh.sendall(b"anyone?")
        with pytest.raises(TimeoutError):
            fresh.recv(10)
        proxy.pass_through()
        fresh.settimeout(2)
        assert round_trip(fresh, b"again") == b"again"  # forwarded once the route is back


def test_stop_closes_every_connection(echo: int) -> None:
    proxy = FaultProxy(echo).start()
    sock = connect(proxy)
    assert round_trip(sock, b"x") == b"x"
    proxy.stop()
    assert closed_by_peer(sock)
    sock.close()
    with pytest.raises(OSError):
        socket.create_connection((proxy.host, proxy.port), timeout=1).close()


def test_postgres_through_the_proxy_fails_as_transient_and_recovers(fresh_postgres: str) -> None:
    """What the fault tests build on: a cut is a TransientError for ticketgate's unit of work, and
    the pool's pre-ping recovers once it is lifted, with no restart."""
    url = make_url(fresh_postgres)
    with FaultProxy(url.port or 5432, target_host=url.host or "127.0.0.1") as proxy:
        engine = make_engine(url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False))
        sessions = make_session_factory(engine)
        try:
            with unit_of_work(sessions) as session:
                assert session.execute(text("select 1")).scalar() == 1
            proxy.cut()
            with pytest.raises(TransientError), unit_of_work(sessions) as session:
                session.execute(text("select 1"))
            proxy.pass_through()
            with unit_of_work(sessions) as session:
                assert session.execute(text("select 2")).scalar() == 2
        finally:
            engine.dispose()
