"""Connections per client address (SPEC §11: `smtp.max_connections_per_ip`, `421 4.7.0`).

Given a listener that allows 3 connections from one address, when a 4th connects from
127.0.0.1, then it hears `421 4.7.0` and is closed, while the 3 already open still deliver and
every mail they send is stored; once one of them leaves, the address may connect again.
"""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.intake.smtp import SmtpLimits
from gateway.store.db import make_engine
from gateway.store.inbox import InboxStore
from gateway.store.schema import upgrade
from tests.integration.smtp_helpers import ThreadedIntake, make_mail, queued_id

PER_IP = 3


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[InboxStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ticketgate.db'}")
    upgrade(engine)
    yield InboxStore(engine)
    engine.dispose()


@pytest.fixture
def intake(inbox: InboxStore) -> Iterator[ThreadedIntake]:
    limits = SmtpLimits(
        host="127.0.0.1", port=0, command_timeout=30.0, data_timeout=30.0, max_connections_per_ip=PER_IP
    )
    with ThreadedIntake(inbox, limits) as running:
        yield running


def refused_reply(running: ThreadedIntake) -> tuple[bytes, bytes]:
    """Connect raw and read what the server says, then whatever follows until it closes."""
    with socket.create_connection((running.host, running.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        first = reader.readline()
        rest = reader.read()  # returns at EOF: the server closed the connection
    return first, rest


def test_one_more_connection_than_allowed_gets_421_and_the_others_deliver(
    intake: ThreadedIntake, inbox: InboxStore
) -> None:
    clients = [smtplib.SMTP(intake.host, intake.port, timeout=30) for _ in range(PER_IP)]
    try:
        for client in clients:
            assert client.ehlo("client.test")[0] == 250
        first, rest = refused_reply(intake)
        assert first == b"421 4.7.0 Too many connections from your address, try again later\r\n"
        assert rest == b""  # nothing more, no greeting: closed
        assert intake.server is not None and intake.server.connection_count == PER_IP

        queued = []
        for number, client in enumerate(clients):
            raw = make_mail(f"mail {number}", "sent while a neighbour was refused")
            client.mail("customer@example.org")
            client.rcpt("support@smilepass.example")
            code, reply = client.data(raw)
            assert code == 250
            queued.append((queued_id(reply), raw))
    finally:
        for client in clients[1:]:
            client.quit()

    # One left: the address is under its limit again and is served.
    deadline = time.monotonic() + 10
    while intake.server is not None and intake.server.connection_count > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    with smtplib.SMTP(intake.host, intake.port, timeout=30) as again:
        assert again.sendmail("c@example.org", ["support@smilepass.example"], make_mail("later", "ok")) == {}
    clients[0].quit()

    for inbox_id, raw in queued:
        stored = inbox.get(inbox_id)
        assert stored is not None and stored[1] == raw
    assert len(inbox.summaries()) == PER_IP + 1


def test_the_total_limit_still_applies_beside_the_per_address_one(inbox: InboxStore) -> None:
    limits = SmtpLimits(host="127.0.0.1", port=0, max_connections=2, max_connections_per_ip=5)
    with ThreadedIntake(inbox, limits) as running:
        clients = [smtplib.SMTP(running.host, running.port, timeout=30) for _ in range(2)]
        try:
            first, _ = refused_reply(running)
            assert first.startswith(b"421 4.3.2 ")  # the listener is full, not this address
        finally:
            for client in clients:
                client.quit()
