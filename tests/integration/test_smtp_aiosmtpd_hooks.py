"""What gateway/intake/smtp.py takes from aiosmtpd beyond its public hooks, pinned so that an
aiosmtpd release that changes any of it fails here rather than in production. pyproject pins
aiosmtpd to the tested range (1.4.x); these tests are what make raising that bound safe.

The private parts and where each is held:
- `_getaddr` (parsing MAIL/RCPT paths, wrapped in a cache): the tests below.
- `_reset_timeout` and `_timeout_cb` (`smtp.data_timeout` bounds the whole DATA phase and a timeout
  answers `421 4.4.2`): the test below, and test_smtp_intake.py, the trickling sender cut off
  with `421 4.4.2`, the stalled one, and the idle client.
- the `dir()` scan for `smtp_*`/`handle_*`/`auth_*` (answered with a short list):
  tests/unit/test_smtp_session_tables.py.
- aiosmtpd's reply strings, rewritten with enhanced status codes: the tests below, and the size
  tests of test_smtp_intake.py; `250-AUTH` (never offered): test_smtp_tls.py.
"""

from __future__ import annotations

import inspect
import re
import smtplib
from collections.abc import Iterator
from pathlib import Path

import aiosmtpd.smtp
import pytest

from gateway.intake.smtp import _AIOSMTPD_REWRITES, MAX_LINE_OCTETS, SmtpLimits, _IntakeSession
from gateway.store.db import make_engine
from gateway.store.inbox import InboxStore
from gateway.store.schema import upgrade
from tests.integration.smtp_helpers import ThreadedIntake, make_mail, queued_id


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[InboxStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ticketgate.db'}")
    upgrade(engine)
    yield InboxStore(engine)
    engine.dispose()


def limits(**overrides: object) -> SmtpLimits:
    values: dict[str, object] = {"host": "127.0.0.1", "port": 0, "command_timeout": 30.0}
    values["data_timeout"] = 30.0
    values.update(overrides)
    return SmtpLimits(**values)  # type: ignore[arg-type]


def test_the_reply_strings_we_rewrite_are_still_the_ones_aiosmtpd_sends() -> None:
    """A rewrite of a string aiosmtpd no longer sends would silently let its own reply through."""
    # aiosmtpd writes one of them as two adjacent literals over two lines: join those first.
    source = re.sub(r"'\s+'", "", inspect.getsource(aiosmtpd.smtp))
    for reply in [*_AIOSMTPD_REWRITES, "250-AUTH "]:
        assert reply in source, f"aiosmtpd no longer sends {reply!r}"


def test_mail_and_rcpt_paths_go_through_the_cached_getaddr(inbox: InboxStore) -> None:
    """aiosmtpd must still parse paths with `_getaddr`, or the cache is dead code; and the cached
    answer must be aiosmtpd's own, including its local-part limit."""
    _IntakeSession._parsed_paths.clear()
    with ThreadedIntake(inbox, limits()) as running, smtplib.SMTP(running.host, running.port) as client:
        client.ehlo("client.test")
        assert client.mail("cache-probe@customer.example")[0] == 250
        assert client.rcpt("support@smilepass.example")[0] == 250
        code, reply = client.data(make_mail("cached paths", "hello"))
        assert code == 250
        # The same paths again: answered from the cache, with the same result.
        assert client.mail("cache-probe@customer.example")[0] == 250
        assert client.rcpt("support@smilepass.example")[0] == 250
        assert client.rcpt("stranger@elsewhere.example")[0] == 550
        client.rset()
    keys = {arg for arg, _limit in _IntakeSession._parsed_paths}
    assert {"<cache-probe@customer.example>", "<support@smilepass.example>"} <= keys
    assert [item.id for item in inbox.summaries()] == [queued_id(reply)]

    # The wrapped method is still there with the signature the override assumes.
    assert list(inspect.signature(aiosmtpd.smtp.SMTP._getaddr).parameters) == ["self", "arg"]
    assert aiosmtpd.smtp.SMTP.local_part_limit == 0
    paths = ["<a@b.example>", "<>", "a@b.example", "<not an address", '<"quoted x"@b.example> SIZE=10']
    for arg, limit in _IntakeSession._parsed_paths:
        paths.append(arg)
        assert limit == 0
    session = _IntakeSession.__new__(_IntakeSession)
    for local_part_limit in (0, 5):
        session.local_part_limit = local_part_limit
        for arg in paths:
            _IntakeSession._parsed_paths.clear()
            expected = aiosmtpd.smtp.SMTP._getaddr(session, arg)
            assert session._getaddr(arg) == expected  # computed
            assert session._getaddr(arg) == expected  # remembered
    _IntakeSession._parsed_paths.clear()


def test_a_line_over_the_limit_in_data_gets_500_5_5_2_and_the_session_goes_on(inbox: InboxStore) -> None:
    big = limits(max_message_size=4 * MAX_LINE_OCTETS)
    with (
        ThreadedIntake(inbox, big) as running,
        smtplib.SMTP(running.host, running.port, timeout=30) as client,
    ):
        client.ehlo("client.test")
        client.mail("customer@example.org")
        client.rcpt("support@smilepass.example")
        long_line = b"Subject: one long line\r\n\r\n" + b"x" * (MAX_LINE_OCTETS + 10) + b"\r\n"
        code, reply = client.data(long_line)
        assert (code, reply) == (500, b"5.5.2 Line too long")
        client.mail("customer@example.org")
        client.rcpt("support@smilepass.example")
        code, reply = client.data(make_mail("fits", "a short line"))
        assert code == 250
    assert [item.id for item in inbox.summaries()] == [queued_id(reply)]


def test_lmtp_gives_the_long_line_reply_once_per_recipient(inbox: InboxStore) -> None:
    with ThreadedIntake(inbox, limits(lmtp=True, max_message_size=4 * MAX_LINE_OCTETS)) as running:
        client = smtplib.LMTP(running.host, running.port, timeout=30)
        try:
            client.ehlo("client.test")
            client.mail("customer@example.org")
            client.rcpt("support@smilepass.example")
            client.rcpt("billing@smilepass.example")
            replies = [client.data(b"Subject: x\r\n\r\n" + b"y" * (MAX_LINE_OCTETS + 10) + b"\r\n")]
            replies.append(client.getreply())
            assert client.noop()[0] == 250  # still in step
        finally:
            client.close()
    assert replies == [(500, b"5.5.2 Line too long")] * 2
    assert inbox.summaries() == []


def test_the_timer_we_take_over_is_still_aiosmtpds_one_timer() -> None:
    """`smtp_DATA` sets aiosmtpd's timer to `data_timeout` once and overrides `_timeout_cb` to say
    `421 4.4.2`: that holds only while aiosmtpd keeps one timer, set by `_reset_timeout(duration)`,
    fired through `_timeout_cb()`, and not reset while DATA reads the message."""
    assert list(inspect.signature(aiosmtpd.smtp.SMTP._reset_timeout).parameters) == ["self", "duration"]
    assert list(inspect.signature(aiosmtpd.smtp.SMTP._timeout_cb).parameters) == ["self"]
    assert "self._timeout_cb" in inspect.getsource(aiosmtpd.smtp.SMTP._reset_timeout)
    assert "_reset_timeout" not in inspect.getsource(aiosmtpd.smtp.SMTP.smtp_DATA)
    assert "_reset_timeout" not in inspect.getsource(aiosmtpd.smtp.SMTP.data_received)
