"""aiosmtpd finds a session's commands, hooks and AUTH mechanisms by scanning `dir()`; ticketgate's
sessions list only the names that scan looks for (gateway/intake/smtp.py, `_ScannedCheaply`).
The tables aiosmtpd builds from that short list must be exactly the ones a full scan gives."""

from __future__ import annotations

import asyncio

import pytest

from gateway.addresses import GatewayAddresses
from gateway.intake.smtp import IntakeHandler, _IntakeSession, _LmtpIntakeSession
from gateway.intake.writer import InboxWriter


def _full_scan(obj: object, prefix: str) -> set[str]:
    """What aiosmtpd would find with the ordinary `dir()` (object's own, not ours)."""
    return {name for name in object.__dir__(obj) if name.startswith(prefix)}


@pytest.mark.parametrize("session_class", [_IntakeSession, _LmtpIntakeSession])
def test_the_short_listing_gives_aiosmtpd_every_command_hook_and_mechanism(
    session_class: type[_IntakeSession],
) -> None:
    loop = asyncio.new_event_loop()
    try:
        handler = IntakeHandler(
            GatewayAddresses(("support@smilepass.example",)),
            InboxWriter(_NoSink()),
            max_recipients=10,
            lmtp=session_class is _LmtpIntakeSession,
        )
        session = session_class(handler, owner=None, data_timeout=60, loop=loop)  # type: ignore[arg-type]
    finally:
        loop.close()
    commands = {name.removeprefix("smtp_") for name in _full_scan(session, "smtp_")}
    assert set(session._smtp_methods) == commands
    assert {"EHLO", "MAIL", "RCPT", "DATA", "QUIT"} <= commands
    if session_class is _LmtpIntakeSession:
        assert "LHLO" in commands
    hooks = {name.removeprefix("handle_") for name in _full_scan(handler, "handle_")}
    assert set(session._handle_hooks) == hooks
    assert {"MAIL", "RCPT", "DATA"} <= hooks
    mechanisms = {name.removeprefix("auth_") for name in _full_scan(session, "auth_")}
    assert set(session._auth_methods) == mechanisms


class _NoSink:
    def add_many(self, mails: object) -> list[int]:
        raise AssertionError("nothing is stored in this test")
