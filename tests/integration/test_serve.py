"""`ticketgate serve` as a user runs it: a real daemon on a loopback port, mail in by smtplib and
swaks, tickets out through the CLI, and a clean stop on SIGTERM."""

from __future__ import annotations

import email
import email.utils
import shutil
import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_component
from tests.helpers import (
    STORE_DOES_NOT_MATTER,
    ServeProcess,
    free_port,
    make_mail,
    relayed_mails,
    ticketgate,
    write_config,
)

Daemon = ServeProcess


@pytest.fixture
def daemon(tmp_path: Path, database_url: str) -> Iterator[tuple[Daemon, Path]]:
    port = free_port()
    config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
    running = Daemon(["--config", str(config)], tmp_path, port)
    try:
        yield running, config
    finally:
        if running.process.poll() is None:
            running.stop()


def wait_for_tickets(config: Path, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = ticketgate("tickets", "list", "--json", config=config).json()
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_mail_over_smtp_becomes_a_ticket_in_the_queue(daemon: tuple[Daemon, Path]) -> None:
    running, config = daemon
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        code, _ = client.ehlo()
        assert code == 250
        refused = client.sendmail(
            "maria@customer.example",
            ["support@smilepass.example"],
            make_mail("[urgent] Payment plan ADD button does nothing"),
        )
        assert refused == {}
        code, _ = client.ehlo()

    [ticket] = wait_for_tickets(config, 1)

    assert ticket["title"] == "Payment plan ADD button does nothing"
    assert ticket["priority"] == "Urgent"
    assert ticket["status"] == "Open"
    table = ticketgate("tickets", "list", config=config).stdout
    assert "Payment plan ADD button does nothing" in table
    assert "Urgent" in table
    assert running.stop() == 0
    assert "stopped" in running.output()


def test_queue_order_priority_then_tier_then_age(daemon: tuple[Daemon, Path]) -> None:
    running, config = daemon
    sent = [
        ("Low one, oldest", "a@free.example"),
        ("[high] High free", "b@free.example"),
        ("[high] High enterprise", "cfo@bigcorp.example"),
        ("[urgent] Urgent free", "c@free.example"),
        ("[high] High pro", "pro@customer.example"),
    ]
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        for subject, sender in sent:
            client.sendmail(sender, ["support@smilepass.example"], make_mail(subject, sender=sender))
            time.sleep(0.05)  # distinct arrival times

    found = wait_for_tickets(config, len(sent))

    assert [t["title"] for t in found] == [
        "Urgent free",
        "High enterprise",
        "High pro",
        "High free",
        "Low one, oldest",
    ]
    assert [t["tier"] for t in found][1:4] == ["Enterprise", "Pro", "Free"]


@STORE_DOES_NOT_MATTER  # swaks against the listener; a ticket on PostgreSQL: the first test
def test_swaks_as_in_the_readme(daemon: tuple[Daemon, Path]) -> None:
    running, config = daemon
    swaks = shutil.which("swaks")
    if swaks is None:
        missing_component("swaks: apt-get install swaks")
    done = subprocess.run(
        [
            str(swaks),
            "--server",
            f"127.0.0.1:{running.port}",
            "--to",
            "support@smilepass.example",
            "--from",
            "maria@customer.example",
            "--header",
            "Subject: [urgent] Payment plan ADD button does nothing",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "queued as" in done.stdout

    [ticket] = wait_for_tickets(config, 1)
    assert (ticket["title"], ticket["priority"]) == ("Payment plan ADD button does nothing", "Urgent")


@STORE_DOES_NOT_MATTER  # refused at RCPT, before anything is stored
def test_unknown_recipient_is_refused_not_relayed(daemon: tuple[Daemon, Path]) -> None:
    running, _config = daemon
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        client.ehlo()
        client.mail("spammer@evil.example")
        code, message = client.rcpt("victim@elsewhere.example")
    assert code == 550
    assert b"5.1.1" in message


def test_embedded_defaults_with_no_config(tmp_path: Path) -> None:
    """The quick start: no config at all, SQLite in the working folder, support@ at any domain."""
    port = 2525
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            pytest.skip("port 2525 is in use here; the embedded default needs it")
    except OSError:
        pass
    running = Daemon([], tmp_path, port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "maria@customer.example", ["support@smilepass.example"], make_mail("Trial ticket")
            )
        deadline = time.monotonic() + 20
        while True:
            run = ticketgate("tickets", "list", "--json", cwd=tmp_path)
            if (run.returncode == 0 and run.json()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [t["ref"] for t in run.json()] == ["TG-1"]
        assert (tmp_path / "ticketgate.db").exists()
        # `support@*` has no domain of its own: Maria's acknowledgement answers from the address
        # she wrote to, and her replies and its bounces go back there, not to support@localhost.
        while not relayed_mails(tmp_path / "outgoing") and time.monotonic() < deadline + 20:
            time.sleep(0.2)
        [eml] = relayed_mails(tmp_path / "outgoing")
        ack = email.message_from_bytes(eml.read_bytes())
        assert email.utils.parseaddr(ack["From"])[1] == "support@smilepass.example"
        assert email.utils.parseaddr(ack["Reply-To"])[1].endswith("@smilepass.example")
        assert ack["Message-ID"].endswith("@smilepass.example>")
        assert ack["To"].endswith("maria@customer.example") or "maria@customer.example" in ack["To"]
    finally:
        assert running.stop() == 0
    output = running.output()
    assert "embedded defaults" in output
    assert "development secret" in output
