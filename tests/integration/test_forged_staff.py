"""A forged staff sender over real SMTP (SPEC §11): `ticketgate serve` trusting the Authentication-Results
of mx.smilepass.example, a mail whose From is forged as staff and whose trusted header merely echoes a
quoted envelope sender with `;dmarc=pass` in it. The command must not be applied and the ticket's events
must say why; the same mail with an honest `dmarc=pass` from that server is applied (so the test can fail)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServeProcess, free_port, make_mail, write_config
from tests.integration.test_conversations import ANA, MARIA, Desk, events

TRUSTED_LINE = 'trusted_authserv_ids = ["mx.smilepass.example"]'
HOSTILE = (
    "Authentication-Results: mx.smilepass.example; spf=pass "
    'smtp.mailfrom="x;dmarc=pass y"@evil.example; dmarc=fail header.from=smilepass.example'
)
HONEST = "Authentication-Results: mx.smilepass.example; dmarc=pass header.from=smilepass.example"


class TrustingDesk(Desk):
    """The usual desk, whose [staff] trusts mx.smilepass.example's Authentication-Results."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        port = free_port()
        self.config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
        text = self.config.read_text(encoding="utf-8")
        anchor = 'triage = "triage@smilepass.example"'
        assert anchor in text
        self.config.write_text(text.replace(anchor, f"{anchor}\n{TRUSTED_LINE}"), encoding="utf-8")
        self.outgoing = tmp_path / "outgoing"
        self.serve = ServeProcess(["--config", str(self.config)], tmp_path, port)
        self.port = port


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[TrustingDesk]:
    # On SQLite only: who is staff is decided before the store is touched, and each run costs ~30 s.
    running = TrustingDesk(tmp_path, f"sqlite:///{tmp_path / 'ticketgate.db'}")
    try:
        yield running
    finally:
        running.stop()


def staff_command(header: str, command: str, message_id: str) -> bytes:
    """A reply from "Ana" with `command`, the given header on top as the trusted MX would put it."""
    mail = make_mail(
        "Re: Refund please",
        f"{command}\nDone here.\n",
        sender=ANA,
        message_id=message_id,
        headers={"In-Reply-To": "<m1@customer.example>"},
    )
    return f"{header}\n".encode() + mail


def test_a_forged_staff_from_with_a_quoted_pass_cannot_command(desk: TrustingDesk) -> None:
    desk.send(
        make_mail("Refund please", "I was charged twice.\n", sender=MARIA, message_id="<m1@customer.example>")
    )
    [ticket] = desk.wait_count(1)
    ref = ticket["ref"]

    desk.send(
        staff_command(HOSTILE, "#resolved", "<forged@evil.example>"),
        mail_from='"x;dmarc=pass y"@evil.example',
    )
    shown = desk.wait(ref, messages=2)
    assert shown["status"] == "Open"
    assert shown["messages"][1]["role"] == "cc"
    [why] = events(shown, "unauthenticated_staff")
    assert "ana@smilepass.example is a staff address but the mail is not authenticated" in why["new"]
    assert "the Authentication-Results of mx.smilepass.example says spf=pass, dmarc=fail" in why["new"]
    [refused] = events(shown, "command_refused")
    assert refused["new"].startswith("#resolved — ") and "not authenticated" in refused["new"]

    # The same command vouched for by the trusted server is applied: the header is read, not ignored.
    desk.send(
        staff_command(HONEST, "#resolved", "<honest@smilepass.example>"), mail_from="ana@smilepass.example"
    )
    shown = desk.wait(ref, messages=3)
    assert shown["status"] == "Resolved"
    assert shown["messages"][2]["role"] == "staff"
    assert len(events(shown, "unauthenticated_staff")) == 1
