"""IMAP reconciliation (SPEC §14) against a real Dovecot, on SQLite and PostgreSQL: a message left in
the watched folder and one moved to the processed folder but never recorded are both reported (the
WARNING, `status`, the gauge) and `ticketgate imap reconcile --take` takes each in exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.daemon.scheduler import Scheduler
from gateway.ops import metrics
from gateway.store.imap_health import read_imap_health
from tests.helpers import free_port, make_mail, ticketgate, write_config
from tests.integration.dovecot import PASSWORD, Dovecot, running_dovecot

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def imap_config(tmp_path: Path, database_url: str, server: Dovecot) -> Path:
    extra = f"""
[processing]
imap_reconcile_minutes = 10

[[imap]]
name = "support"
host = "127.0.0.1"
port = {server.port}
tls = "none"
username = "support"
password = "{PASSWORD}"
"""
    return write_config(tmp_path, database_url, extra, listen=f"127.0.0.1:{free_port()}")


def mail_with_id(subject: str, message_id: str) -> bytes:
    raw = make_mail(subject, "The ADD button does nothing.\n", message_id=message_id)
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def put(server: Dovecot, folder: str, raw: bytes, *, age: timedelta) -> None:
    """Deliver `raw` into `folder` with an arrival time (INTERNALDATE) `age` ago."""
    with server.client() as client:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        client.append(folder, raw, msg_time=datetime.now(UTC) - age)


def cli(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str]:
    """The command run in this process (as `ticketgate` runs it, without another interpreter's
    start-up: the suite's time); its exit code and what it printed."""
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    return code, capsys.readouterr().out


def test_left_behind_and_moved_unrecorded_are_reported_and_taken_in_once(
    tmp_path: Path, database_url: str, dovecot: Dovecot, capsys: pytest.CaptureFixture[str]
) -> None:
    config = imap_config(tmp_path, database_url, dovecot)
    left = mail_with_id("Left behind", "<left-behind@customer.example>")
    moved = mail_with_id("Moved, never recorded", "<moved@customer.example>")
    known = mail_with_id("Taken in as usual", "<known@customer.example>")
    fresh = mail_with_id("Just arrived", "<fresh@customer.example>")
    put(dovecot, "INBOX", left, age=timedelta(hours=1))
    put(dovecot, "INBOX", fresh, age=timedelta(seconds=5))
    put(dovecot, "Processed", moved, age=timedelta(minutes=30))
    put(dovecot, "Processed", known, age=timedelta(minutes=30))
    (tmp_path / "known.eml").write_bytes(known)
    assert cli(capsys, config, "ingest", str(tmp_path / "known.eml"))[0] == 0

    found = ticketgate("imap", "reconcile", "--json", config=config)
    assert found.returncode == 1, found.stderr
    (box,) = found.json()["mailboxes"]
    assert {(m["folder"], m["message_id"]) for m in box["unreconciled"]} == {
        ("INBOX", "left-behind@customer.example"),
        ("Processed", "moved@customer.example"),
    }
    assert box["taken_in"] == [] and box["error"] is None
    assert "unreconciled message left-behind@customer.example" in found.stderr  # the WARNING
    code, out = cli(capsys, config, "status", "--json")
    assert json.loads(out)["imap_health"]["support"]["unreconciled"] == 2
    assert "2 unreconciled" in cli(capsys, config, "status")[1]

    code, out = cli(capsys, config, "imap", "reconcile", "--take", "--json")
    assert code == 0
    (box,) = json.loads(out)["mailboxes"]
    assert len(box["taken_in"]) == 2 and box["moved_to_processed"] == 1
    assert len(dovecot.messages("INBOX")) == 1  # only the fresh one, which the poller will take

    again = ticketgate("imap", "reconcile", "--take", "--json", config=config)
    assert again.returncode == 0
    assert (
        again.json()["mailboxes"][0]["unreconciled"] == [] and again.json()["mailboxes"][0]["taken_in"] == []
    )
    assert ticketgate("process", config=config).returncode == 0
    rows = ticketgate("inbox", "list", "--json", config=config).json()
    by_id = sorted(row["message_id"] for row in rows)
    assert by_id == ["known@customer.example", "left-behind@customer.example", "moved@customer.example"]
    assert all(row["outcome"] == "ticket" for row in rows)
    health = json.loads(cli(capsys, config, "status", "--json")[1])["imap_health"]["support"]
    assert health["unreconciled"] == 0 and health["unreconciled_messages"] == []


def test_the_scheduler_reconciles_on_its_interval_and_sets_the_gauge(
    tmp_path: Path, database_url: str, dovecot: Dovecot
) -> None:
    settings = load_settings(imap_config(tmp_path, database_url, dovecot))
    put(dovecot, "Processed", mail_with_id("Moved", "<moved-2@customer.example>"), age=timedelta(minutes=1))
    runtime = build_runtime(settings)
    try:
        scheduler = Scheduler(runtime.inbox.sessions, settings)
        assert scheduler.reconcile_if_due() is None  # not at start-up
        scheduler._reconciled_at = time.monotonic() - 11 * 60  # ten minutes and more later
        assert scheduler.reconcile_if_due() == 1
        assert scheduler.reconcile_if_due() is None  # not again within the interval
        health = read_imap_health(runtime.engine)["support"]
        assert health["unreconciled"] == 1
        assert health["unreconciled_detail"][0]["message_id"] == "moved-2@customer.example"
    finally:
        runtime.close()
    (family,) = metrics._metrics().imap_unreconciled.collect()
    assert family.name == "ticketgate_imap_unreconciled"
    assert [(s.labels, s.value) for s in family.samples] == [({"mailbox": "support"}, 1.0)]


def test_an_unreachable_mailbox_is_named_and_exits_75(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = f"""
[[imap]]
name = "gone"
host = "127.0.0.1"
port = {free_port()}
tls = "none"
username = "support"
password = "p"
"""
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'tg.db'}", extra, listen=f"127.0.0.1:{free_port()}"
    )
    code, out = cli(capsys, config, "imap", "reconcile", "--json")
    (box,) = json.loads(out)["mailboxes"]
    assert code == 75 and box["mailbox"] == "gone" and "ConnectionRefusedError" in box["error"]
    code, out = cli(capsys, config, "imap", "reconcile")
    assert code == 75 and out.startswith("gone: not reconciled: ConnectionRefusedError")
