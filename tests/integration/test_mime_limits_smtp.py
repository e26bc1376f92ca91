"""Header bytes, MIME parts and MIME depth over real SMTP into `ticketgate serve` (SPEC §11).

Given a desk with small limits, when a customer's mail crosses one, then SMTP still says 250
(the mail is stored, not lost), processing quarantines it whole with the limit named (no ticket,
no acknowledgement, nothing half-done), and after the operator raises the limit `quarantine
retry` turns each into its ticket.
"""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

from gateway.store.db import make_engine
from gateway.store.inbox import QUARANTINED, InboxStore
from tests.helpers import ServeProcess, free_port, relayed_mails, ticketgate, write_config

SMALL_LIMITS = """
[limits]
max_header_bytes = 4096
max_mime_parts = 5
max_mime_depth = 3
"""


def customer_mail(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Maria <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = subject
    msg.set_content("The ADD button on the payment plan page does nothing.")
    return msg


def too_many_headers() -> bytes:
    msg = customer_mail("Many received headers")
    for hop in range(60):
        msg["Received"] = (
            f"from relay{hop}.example.net by relay{hop + 1}.example.net with ESMTP id {hop:020d}"
        )
    return msg.as_bytes()


def too_many_parts() -> bytes:
    msg = customer_mail("Six log files")
    for index in range(6):
        msg.add_attachment(
            f"line {index}\n".encode(), maintype="text", subtype="plain", filename=f"{index}.log"
        )
    return msg.as_bytes()  # 7 parts: the text, 6 logs (the mixed container is the mail itself)


def too_deep() -> bytes:
    inner = customer_mail("Nested forwards")
    for _ in range(3):  # the text ends 4 deep
        outer = EmailMessage()
        outer.make_mixed()
        outer.attach(inner)
        inner = outer
    for name, value in (("From", "Maria <maria@customer.example>"), ("To", "support@smilepass.example")):
        inner[name] = value
    inner["Subject"] = "Nested forwards"
    return inner.as_bytes()


MAILS = {
    "Many received headers": (too_many_headers, "over limits.max_header_bytes: the header section is"),
    "Six log files": (too_many_parts, "over limits.max_mime_parts: more than 5 MIME parts"),
    "Nested forwards": (too_deep, "over limits.max_mime_depth: MIME parts nested 4 deep (limit 3)"),
}


def wait_for(what: str, check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_mail_over_a_limit_is_quarantined_with_the_reason_and_retried_after_raising_it(
    tmp_path: Path,
) -> None:
    # The check comes before any store access, so one database (SQLite) shows it.
    database_url = f"sqlite:///{tmp_path / 'ticketgate.db'}"
    port = free_port()
    config = write_config(tmp_path, database_url, SMALL_LIMITS, listen=f"127.0.0.1:{port}")
    running = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("customer.example")
            for build, _reason in MAILS.values():
                client.mail("maria@customer.example")
                client.rcpt("support@smilepass.example")
                code, reply = client.data(build())
                assert code == 250, reply  # accepted and stored: nothing is lost

        engine = make_engine(database_url)
        try:
            inbox = InboxStore(engine)
            wait_for("three quarantined mails", lambda: len(inbox.summaries(state=QUARANTINED)) == len(MAILS))
        finally:
            engine.dispose()
    finally:
        running.stop()

    items = ticketgate("quarantine", "list", "--json", config=config).json()

    reasons = [item["reason"] for item in items]
    for _build, expected in MAILS.values():
        # The reason names the stage that refused the mail, then the limit.
        assert sum(reason.startswith(f"stage parse_mail: {expected}") for reason in reasons) == 1, (
            expected,
            reasons,
        )
    assert ticketgate("tickets", "list", "--json", config=config).json() == []  # never half-processed
    assert not relayed_mails(tmp_path / "outgoing")  # and no acknowledgement went out
    shown = ticketgate("quarantine", "show", str(items[0]["id"]), config=config)
    assert shown.returncode == 0 and f"reason: {items[0]['reason']}" in shown.stdout

    # The operator raises the limits (back to the defaults) and retries.
    config.write_text(config.read_text().replace(SMALL_LIMITS, ""))
    retried = ticketgate("quarantine", "retry", config=config)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.count(": ticket SP-") == len(MAILS), retried.stdout
    titles = {ticket["title"] for ticket in ticketgate("tickets", "list", "--json", config=config).json()}
    assert titles == set(MAILS)
    assert ticketgate("quarantine", "list", "--json", config=config).json() == []
