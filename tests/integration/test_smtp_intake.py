"""SMTP and LMTP intake against a real aiosmtpd listener on loopback, driven by smtplib and swaks.

Given a gateway for support@ and billing@smilepass.example on a SQLite inbox, when a client
talks SMTP to it, then what it accepts is in the inbox byte for byte, and nothing else is.
"""

from __future__ import annotations

import itertools
import select
import smtplib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.intake.smtp import SmtpLimits
from gateway.store.db import make_engine
from gateway.store.inbox import InboxStore
from gateway.store.schema import upgrade
from tests.conftest import missing_component
from tests.integration.smtp_helpers import ThreadedIntake, make_mail, queued_id

SWAKS = Path("/usr/bin/swaks")


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[InboxStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ticketgate.db'}")
    upgrade(engine)
    yield InboxStore(engine)
    engine.dispose()


def limits(**overrides: object) -> SmtpLimits:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "command_timeout": 30.0,
        "data_timeout": 30.0,
    }
    values.update(overrides)
    return SmtpLimits(**values)  # type: ignore[arg-type]


@pytest.fixture
def intake(inbox: InboxStore) -> Iterator[ThreadedIntake]:
    with ThreadedIntake(inbox, limits()) as running:
        yield running


def connect(running: ThreadedIntake) -> smtplib.SMTP:
    client = smtplib.SMTP(running.host, running.port, timeout=30)
    client.ehlo("client.test")
    return client


def test_mail_is_stored_with_its_envelope_and_exact_bytes(intake: ThreadedIntake, inbox: InboxStore) -> None:
    raw = make_mail(
        "Zahlung fehlgeschlagen – bitte helfen",
        "Grüße aus Köln, 支付失败.\n.a line that starts with a dot\n..and one with two\n\nAna",
        message_id="first@example.org",
    )
    with connect(intake) as client:
        assert client.has_extn("8bitmime") and client.has_extn("smtputf8")
        assert client.mail("josé@example.org", ["SMTPUTF8", "BODY=8BITMIME"])[0] == 250
        assert client.rcpt("support@smilepass.example")[0] == 250
        code, reply = client.data(raw)

    assert code == 250
    assert reply.startswith(b"2.0.0 Ok: queued as ")
    stored = inbox.get(queued_id(reply))
    assert stored is not None
    summary, stored_raw = stored
    assert stored_raw == raw
    assert (summary.mail_from, summary.rcpt_tos, summary.source) == (
        "josé@example.org",
        ("support@smilepass.example",),
        "smtp",
    )
    assert summary.state == "pending"
    assert [item.id for item in inbox.summaries()] == [summary.id]


def test_plus_sub_addresses_and_null_sender_are_accepted(intake: ThreadedIntake, inbox: InboxStore) -> None:
    with connect(intake) as client:
        assert client.mail("<>")[0] == 250  # a bounce: null reverse-path
        assert client.rcpt("support+billing@smilepass.example")[0] == 250
        assert client.rcpt("Support+SP-42.aB3@SmilePass.Example")[0] == 250
        code, reply = client.data(make_mail("Undelivered", "bounce"))

    assert code == 250
    stored = inbox.get(queued_id(reply))
    assert stored is not None
    assert stored[0].mail_from == ""
    assert stored[0].rcpt_tos == ("support+billing@smilepass.example", "Support+SP-42.aB3@SmilePass.Example")


@pytest.mark.parametrize(
    "recipient",
    [
        "nobody@smilepass.example",  # our domain, not our mailbox
        "support@elsewhere.example",  # our local part, another domain: relaying
        "victim@gmail.example",  # plain open-relay probe
        "support@smilepass.example.evil.example",
        "support%smilepass.example@evil.example",  # percent hack
    ],
)
def test_recipients_not_ours_get_550_and_nothing_is_relayed(
    intake: ThreadedIntake, inbox: InboxStore, recipient: str
) -> None:
    with connect(intake) as client:
        client.mail("spammer@evil.example")
        code, reply = client.rcpt(recipient)
        assert (code, reply[:5]) == (550, b"5.1.1")
        assert client.docmd("DATA")[0] == 503  # no recipient left: nothing to send anywhere
    assert inbox.summaries() == []


def test_size_is_announced_and_mail_over_it_gets_552(inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(max_message_size=2000)) as running, connect(running) as client:
        assert client.esmtp_features["size"] == "2000"

        code, reply = client.mail("customer@example.org", ["SIZE=2001"])
        assert (code, reply[:5]) == (552, b"5.3.4")

        client.rset()
        client.mail("customer@example.org")
        client.rcpt("support@smilepass.example")
        code, reply = client.data(make_mail("big", "x" * 3000))
        assert (code, reply[:5]) == (552, b"5.3.4")

        # The session goes on, and a mail within the limit is taken.
        client.mail("customer@example.org", ["SIZE=500"])
        client.rcpt("support@smilepass.example")
        small = make_mail("small", "fits")
        code, reply = client.data(small)
        assert code == 250

    stored = inbox.summaries()
    assert [item.id for item in stored] == [queued_id(reply)]
    assert stored[0].size == len(small)


def test_empty_message_is_refused(intake: ThreadedIntake, inbox: InboxStore) -> None:
    with connect(intake) as client:
        client.mail("customer@example.org")
        client.rcpt("support@smilepass.example")
        code, reply = client.data(b"")
    assert (code, reply[:5]) == (554, b"5.6.0")
    assert inbox.summaries() == []


def test_recipients_past_the_limit_get_452(inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(max_recipients=3)) as running, connect(running) as client:
        client.mail("customer@example.org")
        for detail in ("a", "b", "c"):
            assert client.rcpt(f"support+{detail}@smilepass.example")[0] == 250
        code, reply = client.rcpt("support+d@smilepass.example")
        assert (code, reply[:5]) == (452, b"4.5.3")
        code, reply = client.data(make_mail("three", "of them"))
        assert code == 250

    stored = inbox.get(queued_id(reply))
    assert stored is not None
    assert len(stored[0].rcpt_tos) == 3


def test_connections_past_the_limit_get_421(inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(max_connections=2)) as running:
        first, second = connect(running), connect(running)
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP(running.host, running.port, timeout=10)
        assert refused.value.smtp_code == 421
        error = refused.value.smtp_error
        assert isinstance(error, bytes) and error.startswith(b"4.3.2")

        first.quit()
        third = _connect_when_allowed(running)
        assert third.noop()[0] == 250
        for client in (second, third):
            client.quit()


def _connect_when_allowed(running: ThreadedIntake) -> smtplib.SMTP:
    # The server learns of a closed connection a moment after the client closed it.
    deadline = time.monotonic() + 5
    while True:
        try:
            return connect(running)
        except smtplib.SMTPConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_idle_client_is_told_421_and_disconnected_after_the_command_timeout(inbox: InboxStore) -> None:
    with (
        ThreadedIntake(inbox, limits(command_timeout=0.5)) as running,
        socket.create_connection((running.host, running.port), timeout=10) as sock,
    ):
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        started = time.monotonic()
        said = reader.read()  # returns at EOF: the server closed the connection
        waited = time.monotonic() - started
    assert said == b"421 4.4.2 Timeout: no command received, closing the connection\r\n"
    assert 0.4 < waited < 4.0  # slack for a loaded machine


def _open_data(running: ThreadedIntake) -> smtplib.SMTP:
    client = connect(running)
    client.mail("customer@example.org")
    client.rcpt("support@smilepass.example")
    assert client.docmd("DATA")[0] == 354
    return client


def test_slow_but_steady_data_within_the_data_timeout_is_taken(inbox: InboxStore) -> None:
    """A slow link is fine as long as the whole DATA phase fits in `data_timeout`."""
    with ThreadedIntake(inbox, limits(data_timeout=5.0)) as running:
        client = _open_data(running)
        client.send(b"Subject: slow link\r\n\r\n")
        for n in range(4):  # 1 s in all, a fifth of the bound
            time.sleep(0.25)
            client.send(f"line {n}\r\n".encode())
        client.send(b".\r\n")
        code, reply = client.getreply()
        client.close()
    assert code == 250
    assert [item.id for item in inbox.summaries()] == [queued_id(reply)]


def _raw_data_session(running: ThreadedIntake) -> tuple[socket.socket, Any]:
    """A raw client that got as far as `354`: (socket, its line reader)."""
    sock = socket.create_connection((running.host, running.port), timeout=10)
    reader = sock.makefile("rb")
    assert reader.readline().startswith(b"220 ")
    for command in (
        b"HELO client.test",
        b"MAIL FROM:<slow@example.org>",
        b"RCPT TO:<support@smilepass.example>",
    ):
        sock.sendall(command + b"\r\n")
        assert reader.readline().startswith(b"250 ")
    sock.sendall(b"DATA\r\n")
    assert reader.readline().startswith(b"354 ")
    return sock, reader


def test_a_client_trickling_bytes_is_cut_off_with_421_when_the_data_timeout_passes(
    inbox: InboxStore,
) -> None:
    """One byte every 50 ms is never silent, but the whole DATA phase is bounded (SPEC §15)."""
    data_timeout = 1.0
    with ThreadedIntake(inbox, limits(data_timeout=data_timeout, command_timeout=30.0)) as running:
        sock, reader = _raw_data_session(running)
        started = time.monotonic()
        with sock:
            for byte in itertools.cycle(b"Subject: trickle\r\n\r\nhello\r\n"):
                assert time.monotonic() - started < data_timeout + 6.0, "still connected"
                sock.sendall(bytes([byte]))
                if select.select([sock], [], [], 0.05)[0]:  # the server spoke (or closed)
                    break
            said = reader.read()  # returns at EOF: the server closed the connection
            waited = time.monotonic() - started
    assert said == b"421 4.4.2 Timeout: the message was not received within the time allowed\r\n"
    assert data_timeout - 0.1 < waited < data_timeout + 3.0  # slack for a loaded machine
    assert inbox.summaries() == []


def test_stalled_data_is_cut_off_after_the_data_timeout_and_not_stored(inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(data_timeout=0.5)) as running:
        sock, reader = _raw_data_session(running)
        with sock:
            sock.sendall(b"Subject: half a mail\r\n\r\nand then the sender stalls\r\n")
            said = reader.read()  # returns at EOF
    assert said == b"421 4.4.2 Timeout: the message was not received within the time allowed\r\n"
    assert inbox.summaries() == []


def test_lmtp_gives_one_reply_per_recipient(inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(lmtp=True, max_message_size=5000)) as running:
        client = smtplib.LMTP(running.host, running.port, timeout=30)
        try:
            assert client.docmd("EHLO", "client.test")[0] == 500  # LMTP speaks LHLO only
            assert client.ehlo("client.test")[0] == 250  # smtplib.LMTP sends LHLO here
            assert client.has_extn("size")
            client.mail("customer@example.org")
            assert client.rcpt("support@smilepass.example")[0] == 250
            assert client.rcpt("stranger@elsewhere.example")[0] == 550
            assert client.rcpt("billing@smilepass.example")[0] == 250
            raw = make_mail("lmtp", "two recipients, one copy")
            first = client.data(raw)
            second = client.getreply()
            # Over the size limit: also one reply per recipient, or the client would lose step.
            client.mail("customer@example.org")
            client.rcpt("support@smilepass.example")
            client.rcpt("billing@smilepass.example")
            big = [client.data(make_mail("big", "x" * 80 + "\n") * 100), client.getreply()]
            assert client.noop()[0] == 250  # still in step
        finally:
            client.close()

    assert first[0] == second[0] == 250
    assert first[1].startswith(b"2.0.0 <support@smilepass.example>")
    assert second[1].startswith(b"2.0.0 <billing@smilepass.example>")
    assert queued_id(first[1]) == queued_id(second[1])
    assert [(code, reply[:5]) for code, reply in big] == [(552, b"5.3.4")] * 2
    stored = inbox.summaries()
    assert len(stored) == 1
    assert stored[0].source == "lmtp"
    assert stored[0].rcpt_tos == ("support@smilepass.example", "billing@smilepass.example")


def test_many_mails_over_concurrent_connections_are_each_stored_once(inbox: InboxStore) -> None:
    clients, per_client = 6, 30
    replies: dict[str, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def send_all(worker: int, running: ThreadedIntake) -> None:
        try:
            with connect(running) as client:
                for n in range(per_client):
                    message_id = f"load-{worker}-{n}@example.org"
                    client.mail("customer@example.org")
                    client.rcpt("support@smilepass.example")
                    code, reply = client.data(make_mail(f"mail {worker}/{n}", "load", message_id=message_id))
                    assert code == 250, reply
                    with lock:
                        replies[message_id] = queued_id(reply)
        except BaseException as exc:
            errors.append(exc)

    with ThreadedIntake(inbox, limits()) as running:
        threads = [threading.Thread(target=send_all, args=(w, running)) for w in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert running.writer is not None
        committed = running.writer.committed_mails

    assert errors == []
    total = clients * per_client
    assert len(replies) == total
    assert len(set(replies.values())) == total  # distinct inbox ids
    stored = {item.id: item for item in inbox.summaries()}
    assert set(stored) == set(replies.values())  # exactly these, each once
    for message_id, inbox_id in replies.items():
        found = inbox.get(inbox_id)
        assert found is not None and f"<{message_id}>".encode() in found[1]
    assert committed == total


def test_swaks_delivers_and_is_refused_for_a_foreign_domain(
    intake: ThreadedIntake, inbox: InboxStore
) -> None:
    if not SWAKS.exists():
        missing_component("swaks is not installed (apt-get install swaks)")
    server = ["--server", intake.host, "--port", str(intake.port), "--helo", "swaks.test"]
    delivered = subprocess.run(
        [
            str(SWAKS),
            *server,
            "--from",
            "customer@example.org",
            "--to",
            "support+urgent@smilepass.example",
            "--header",
            "Subject: [urgent] cannot pay",
            "--body",
            "The checkout fails with error 502.",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert delivered.returncode == 0, delivered.stdout + delivered.stderr
    assert "250 2.0.0 Ok: queued as" in delivered.stdout
    inbox_id = queued_id(delivered.stdout.encode())
    stored = inbox.get(inbox_id)
    assert stored is not None
    assert stored[0].rcpt_tos == ("support+urgent@smilepass.example",)
    assert b"Subject: [urgent] cannot pay" in stored[1]
    assert b"The checkout fails with error 502." in stored[1]

    relayed = subprocess.run(
        [str(SWAKS), *server, "--from", "spammer@evil.example", "--to", "victim@elsewhere.example"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert relayed.returncode == 24  # swaks: "RCPT TO was rejected"
    assert "550 5.1.1" in relayed.stdout
    assert [item.id for item in inbox.summaries()] == [inbox_id]
