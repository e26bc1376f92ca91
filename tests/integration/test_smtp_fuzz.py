"""Fuzzing the SMTP front over a real socket (issue 12 item 6), with hypothesis.

Given one running intake, when a client sends generated command sequences — pipelined, garbage,
split at any byte, slow, with lines over the limits, DATA without MAIL — then the server answers
each line with a well-formed reply or closes, never crashes (no session error logged), forgets
the session once the client has gone (its count of connections from the fuzzing address goes
back to 0), stores every mail it said 250 to, and all the while keeps serving a well-behaved
client on another address.

The run in the suite is bounded (TICKETGATE_FUZZ_EXAMPLES, default 50 per test); a longer run:
    TICKETGATE_FUZZ_EXAMPLES=2000 .venv/bin/pytest -m fuzz tests/integration/test_smtp_fuzz.py
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.intake.smtp import MAX_LINE_OCTETS, SmtpLimits
from gateway.store.db import make_engine
from gateway.store.inbox import InboxStore
from gateway.store.schema import upgrade
from tests.integration.smtp_helpers import ThreadedIntake, make_mail, queued_id

EXAMPLES = int(os.environ.get("TICKETGATE_FUZZ_EXAMPLES", "50"))
FUZZ_ADDRESS = "127.0.0.1"  # the fuzzing client
GOOD_ADDRESS = "127.0.0.2"  # the well-behaved client beside it (all of 127/8 is loopback)
QUIET = 0.25  # seconds of silence after which the server is taken to have said all it will

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(max(120, EXAMPLES * 3))]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis folder in the work tree; a failure prints its example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_REPLY_LINE = re.compile(rb"^[2-5][0-9][0-9](?:[ -].*)?$")


class _Errors(logging.Handler):
    """Every ERROR the server side logs (session errors, asyncio's unhandled exceptions)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class GoodClient:
    """Sends a correct mail every few tens of milliseconds from GOOD_ADDRESS until stopped."""

    intake: ThreadedIntake
    sent: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            try:
                with smtplib.SMTP(
                    self.intake.host, self.intake.port, timeout=30, source_address=(GOOD_ADDRESS, 0)
                ) as client:
                    client.ehlo("good.client.test")
                    client.mail("maria@customer.example")
                    client.rcpt("support@smilepass.example")
                    code, reply = client.data(make_mail(f"good {number}", "while the fuzzer runs"))
                if code != 250:
                    self.failures.append(f"mail {number}: {code} {reply!r}")
                else:
                    self.sent.append(queued_id(reply))
            except (OSError, smtplib.SMTPException) as exc:
                self.failures.append(f"mail {number}: {exc!r}")
            self.stop.wait(0.05)


@dataclass
class Front:
    intake: ThreadedIntake
    inbox: InboxStore
    errors: _Errors


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "ticketgate.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    inbox = InboxStore(engine)
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    limits = SmtpLimits(
        host="127.0.0.1", port=0, max_message_size=64 * 1024, command_timeout=10.0, data_timeout=10.0
    )
    good: GoodClient | None = None
    thread: threading.Thread | None = None
    try:
        with ThreadedIntake(inbox, limits) as intake:
            good = GoodClient(intake)
            thread = threading.Thread(target=good.run, name="good-client", daemon=True)
            thread.start()
            yield Front(intake, inbox, errors)
            good.stop.set()
            thread.join(timeout=60)
            assert good.failures == [], good.failures[:5]
            assert len(good.sent) > 0
            assert all(inbox.get(inbox_id) is not None for inbox_id in good.sent)
    finally:
        if good is not None:
            good.stop.set()
        logging.getLogger().removeHandler(errors)
        engine.dispose()


# --- what a client may send ------------------------------------------------------------------

_ADDRESSES = st.sampled_from(
    [
        "support@smilepass.example",
        "Support+billing@SmilePass.example",
        "",
        "nobody@evil.example",
        "a" * 300 + "@example.org",
        "josé@exämple.org",
        "x@[127.0.0.1]",
        '"quoted local"@example.org',
        "<nested>",
        "support@smilepass.example> SIZE=1",
    ]
)
_MAIL_PARAMS = st.sampled_from(
    ["", " SIZE=100", " SIZE=99999999999999", " BODY=8BITMIME", " SMTPUTF8", " FOO=BAR", " SIZE=", " =="]
)
_WORDS = st.sampled_from(
    [
        "EHLO client.test",
        "HELO client.test",
        "LHLO client.test",
        "ehlo",
        "DATA",
        "DATA now",
        "RSET",
        "NOOP",
        "QUIT",
        "STARTTLS",
        "VRFY support",
        "EXPN staff",
        "HELP",
        "HELP MAIL",
        "AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=",
        "AUTH LOGIN",
        "BDAT 10 LAST",
        "TURN",
        ".",
        "",
        "MAIL FROM:",
        "RCPT TO:",
        "MAIL FROM:<support@smilepass.example> AUTH=<>",
    ]
)
_MAIL_LINE = st.builds(lambda a, p: f"MAIL FROM:<{a}>{p}".encode(), _ADDRESSES, _MAIL_PARAMS)
_RCPT_LINE = st.builds(lambda a: f"RCPT TO:<{a}>".encode(), _ADDRESSES)
_COMMAND_LINES = st.one_of(
    _WORDS.map(str.encode),
    _MAIL_LINE,
    _RCPT_LINE,
    st.text(max_size=60).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=60),
    st.integers(min_value=500, max_value=3000).map(lambda n: b"NOOP " + b"x" * n),  # over the command limit
)
_LINE_ENDS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b""])
# Random lines alone seldom get past EHLO and MAIL; most steps are transactions that do (and
# may stop anywhere: after RCPT, in DATA without an end, with a broken end), mixed with noise.
_TRANSACTION = st.builds(
    lambda mail, rcpts, data, body, end: b"\r\n".join([mail, *rcpts, *data]) + (body + end if data else b""),
    _MAIL_LINE,
    st.lists(_RCPT_LINE, min_size=1, max_size=3),
    st.sampled_from([[b"DATA", b""], [b"DATA", b""], []]),
    st.binary(max_size=300),
    st.sampled_from([b"\r\n.\r\n", b"\r\n.\r\n", b"\r\n.", b"\n.\n", b""]),
)
_STEPS = st.one_of(_TRANSACTION, _TRANSACTION, st.tuples(_COMMAND_LINES, _LINE_ENDS).map(b"".join))
_GREETINGS = st.sampled_from([b"EHLO fuzz.test\r\n", b"EHLO fuzz.test\r\n", b"HELO fuzz.test\r\n", b""])
_SESSIONS = st.builds(
    lambda greeting, steps: greeting + b"".join(steps), _GREETINGS, st.lists(_STEPS, min_size=1, max_size=8)
)


@dataclass
class Talk:
    replies: list[bytes]
    closed_by_server: bool


def talk(front: Front, chunks: list[bytes], pauses: list[float]) -> Talk:
    """Connect from FUZZ_ADDRESS, send the chunks (with pauses), read until quiet or closed, close."""
    received = bytearray()
    closed = False
    with socket.create_connection((front.intake.host, front.intake.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for chunk, pause in zip(chunks, pauses, strict=True):
                sock.sendall(chunk)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            closed = True  # the server hung up on us mid-stream: allowed, it answered or closed
        sock.settimeout(QUIET)
        while not closed:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            received += data
    lines = bytes(received).split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return Talk(lines, closed)


def assert_server_healthy(front: Front, talked: Talk) -> None:
    for line in talked.replies:
        assert _REPLY_LINE.match(line), f"not an SMTP reply: {line[:200]!r}"
    for line in talked.replies:
        match = re.match(rb"^250 2\.0\.0 Ok: queued as (\d+)$", line)
        if match:  # whatever the server took, it has: nothing accepted is lost
            assert front.inbox.get(int(match.group(1))) is not None
    assert front.intake.server is not None
    deadline = time.monotonic() + 10
    while front.intake.server.connections_from(FUZZ_ADDRESS) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert front.intake.server.connections_from(FUZZ_ADDRESS) == 0, "the session outlived its client"
    assert front.errors.records == [], [record.getMessage() for record in front.errors.records[:3]]


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in itertools.pairwise(points) if b > a] or [b""]


@FUZZ_SETTINGS
@given(
    stream=_SESSIONS,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    slow=st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.01, 0.05]), min_size=9, max_size=9),
)
def test_generated_sessions_get_replies_or_a_close_and_leave_no_session(
    front: Front, stream: bytes, cuts: list[int], slow: list[float]
) -> None:
    chunks = split(stream, cuts)
    talked = talk(front, chunks, slow[: len(chunks)] + [0.0] * (len(chunks) - len(slow)))
    assert_server_healthy(front, talked)


@FUZZ_SETTINGS
@given(garbage=st.binary(min_size=1, max_size=4096), cuts=st.lists(st.integers(0, 5000), max_size=4))
def test_pipelined_garbage(front: Front, garbage: bytes, cuts: list[int]) -> None:
    chunks = split(garbage, cuts)
    assert_server_healthy(front, talk(front, chunks, [0.0] * len(chunks)))


def test_a_mail_sent_one_byte_at_a_time_is_stored_as_sent(front: Front) -> None:
    """Every byte boundary at once: each byte is its own TCP segment (Nagle off, a pause between)."""
    raw = make_mail("byte by byte", "split at every boundary\n.leading dot")
    stuffed = raw.replace(b"\r\n.", b"\r\n..")
    stream = (
        b"EHLO slow.client.test\r\nMAIL FROM:<maria@customer.example>\r\n"
        b"RCPT TO:<support@smilepass.example>\r\nDATA\r\n" + stuffed + b".\r\nQUIT\r\n"
    )
    talked = talk(front, [bytes([byte]) for byte in stream], [0.0005] * len(stream))
    assert_server_healthy(front, talked)
    (queued,) = [line for line in talked.replies if line.startswith(b"250 2.0.0 Ok: queued as ")]
    stored = front.inbox.get(queued_id(queued))
    assert stored is not None and stored[1] == raw
    assert talked.replies[-1].startswith(b"221") and talked.closed_by_server


def test_data_without_mail_and_lines_over_the_limits(front: Front) -> None:
    over_command = b"NOOP " + b"x" * 2000
    over_everything = b"X" * (MAX_LINE_OCTETS + 10)
    stream = (
        b"EHLO client.test\r\nDATA\r\n"  # no MAIL: 503, and the body lines are commands
        + over_command
        + b"\r\n"
        + over_everything
        + b"\r\nNOOP\r\nMAIL FROM:<m@customer.example>\r\nRCPT TO:<support@smilepass.example>\r\nDATA\r\n"
        + b"Subject: long line\r\n\r\n"
        + over_everything
        + b"\r\n.\r\nNOOP\r\nQUIT\r\n"
    )
    talked = talk(front, [stream], [0.0])
    assert_server_healthy(front, talked)
    codes = [line[:3] for line in talked.replies if line[3:4] == b" "]
    assert codes[:3] == [b"220", b"250", b"503"]  # greeting, EHLO, DATA without MAIL
    assert b"500" in codes  # a command line too long
    assert not [line for line in talked.replies if b"queued as" in line]  # the over-long mail: not taken
    assert talked.replies[-1].startswith(b"221")
