"""The operator's commands as a user runs them: `status`, `process`, `db backup`, and the
pipe-only deployment whose blob-store fault used to be reported as "database unavailable" and
left the mail pending for good (issue 13)."""

from __future__ import annotations

import io
import smtplib
import sqlite3
import threading
import time
from contextlib import closing
from email.message import EmailMessage
from pathlib import Path

from PIL import Image

from tests.helpers import ServeProcess, free_port, make_mail, relayed_mails, ticketgate, write_config


def _png(width: int = 640, height: int = 400) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _mail_with_screenshot(subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Maria Lopez <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@customer.example>"
    msg.set_content("The checkout page shows an error, screenshot attached.\n")
    msg.add_attachment(_png(), maintype="image", subtype="png", filename="checkout.png")
    return msg.as_bytes()


def _break_blob_store(tmp_path: Path) -> Path:
    """A file where the blob folder should be: every write under it fails (even for root)."""
    blobs = tmp_path / "blobs"
    blobs.write_text("not a folder\n")
    return blobs


def _wait_for_tickets(database: Path, count: int, serve: ServeProcess) -> None:
    """Until the database holds `count` tickets (read directly: polling the CLI costs a process each)."""
    deadline = time.monotonic() + 90
    while True:
        with closing(sqlite3.connect(database)) as db:
            if db.execute("SELECT count(*) FROM tickets").fetchone()[0] >= count:
                return
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.2)


def test_status_of_a_desk_with_no_daemon(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
    for n in range(2):
        assert ticketgate("ingest", config=config, stdin=make_mail(subject=f"Refund {n}")).returncode == 0

    shown = ticketgate("status", "--json", config=config)
    assert shown.returncode == 0, shown.stderr
    status = shown.json()
    assert status["intake"] == {
        "listen": f"127.0.0.1:{port}",
        "lmtp": False,
        "listening": False,
        "writable": True,  # a test write went through (SPEC §15)
        "cannot_write_since": None,
        "write_error": None,
    }
    assert status["inbox"]["by_state"] == {"done": 2}
    assert status["inbox"]["pending"] == 0
    assert status["inbox"]["oldest_pending_at"] is None
    assert status["quarantine"] == 0
    # Each new ticket: the customer's acknowledgement and the triage address's notice.
    assert status["outbox"]["by_status"] == {"sent": 4}
    assert status["undeliverable"] == []
    assert status["nodes"] == []  # no `serve` has run on this database: no heartbeat

    text = ticketgate("status", config=config)
    assert text.returncode == 0
    assert "NOT listening" in text.stdout
    assert "2 done; nothing pending" in text.stdout
    assert "nodes:         0" in text.stdout


def test_status_says_listening_while_serve_runs_and_names_a_dead_database(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'tg.db'}", listen=f"127.0.0.1:{port}")
    serve = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        status = ticketgate("status", "--json", config=config).json()
        assert status["intake"]["listening"] is True
        [node] = status["nodes"]  # the running node's heartbeat row
        assert node["pid"] == serve.process.pid and node["last_beat"] and node["stopped_at"] is None
    finally:
        assert serve.stop() == 0

    # A restart replaces its own earlier row (one row per node, not one per run), and people read
    # its times with their zone.
    again = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        [node] = ticketgate("status", "--json", config=config).json()["nodes"]
        assert node["pid"] == again.process.pid and node["started_at"].endswith("Z")
    finally:
        assert again.stop() == 0
    shown_nodes = ticketgate("status", config=config).stdout
    assert "nodes:         1" in shown_nodes
    [line] = [line for line in shown_nodes.splitlines() if f"pid {again.process.pid}" in line]
    assert "None" not in line and "started " in line and line.endswith("Z") and ", stopped " in line

    gone = write_config(tmp_path, f"sqlite:///{tmp_path / 'no-such-dir' / 'tg.db'}")
    shown = ticketgate("status", config=gone)
    assert shown.returncode == 75
    assert "database unavailable" in shown.stdout


def test_a_blob_store_fault_in_a_pipe_only_deployment_is_named_and_taken_up_later(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'tg.db'}")
    blobs = _break_blob_store(tmp_path)

    first = ticketgate("ingest", config=config, stdin=_mail_with_screenshot("Checkout error"))
    # Stored: the MTA must not send it again; but the operator is told what is wrong, truly.
    assert first.returncode == 0, first.stderr
    assert "stored, not processed yet; will retry: cannot store blob" in first.stderr
    assert f"in the blob store {blobs}" in first.stderr
    assert "database unavailable" not in first.stderr
    status = ticketgate("status", "--json", config=config).json()
    assert status["inbox"]["by_state"] == {"pending": 1}  # no ticket yet, nothing lost

    # `process` (cron) tries it again at once, still broken: exit 75 and the cause.
    again = ticketgate("process", config=config)
    assert again.returncode == 75
    assert "in the blob store" in again.stdout
    assert "1 mail(s) still pending" in again.stdout

    blobs.unlink()  # the operator fixes the storage
    second = ticketgate("ingest", config=config, stdin=make_mail(subject="Another question"))
    assert second.returncode == 0, second.stderr
    assert "earlier inbox 1: ticket SP-" in second.stderr
    titles = {t["title"]: t for t in ticketgate("tickets", "list", "--json", config=config).json()}
    assert set(titles) == {"Checkout error", "Another question"}
    assert len(titles["Checkout error"]["screenshots"]) == 1
    assert ticketgate("status", "--json", config=config).json()["inbox"]["by_state"] == {"done": 2}


def test_process_takes_up_pending_mail_and_sends_what_is_due(tmp_path: Path, fresh_postgres: str) -> None:
    config = write_config(tmp_path, fresh_postgres)
    _break_blob_store(tmp_path)
    for n in range(2):
        ticketgate("ingest", config=config, stdin=_mail_with_screenshot(f"Broken page {n}"))
    (tmp_path / "blobs").unlink()

    done = ticketgate("process", config=config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": ticket SP-") == 2
    # Two acknowledgements and two notices to triage, handed to the relay (a folder here).
    assert "processed 2 mail(s), sent 4 notification(s); 0 mail(s) still pending" in done.stdout
    assert len(relayed_mails(tmp_path / "outgoing")) == 4

    idle = ticketgate("process", config=config)
    assert idle.returncode == 0
    assert "processed 0 mail(s)" in idle.stdout


def test_backup_while_serve_takes_mail_and_restore_from_the_copy(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'tg.db'}", listen=f"127.0.0.1:{port}")
    serve = ServeProcess(["--config", str(config)], tmp_path, port)
    sent: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            n = 0
            while not stop.is_set() and n < 60:
                subject = f"Question {n}"
                # A customer each: one customer's 31st new ticket in the hour would be `flood`.
                customer = f"customer{n}@customer.example"
                client.sendmail(customer, ["support@smilepass.example"], make_mail(subject, sender=customer))
                sent.append(subject)
                n += 1

    sender = threading.Thread(target=keep_sending)
    try:
        sender.start()
        _wait_for_tickets(tmp_path / "tg.db", 3, serve)
        backup = tmp_path / "copy.db"
        made = ticketgate("db", "backup", str(backup), config=config)
        assert made.returncode == 0, made.stderr
        assert "backed up" in made.stdout
        time.sleep(0.5)  # mail keeps coming after the copy
    finally:
        stop.set()
        sender.join()
        assert serve.stop() == 0

    with closing(sqlite3.connect(backup)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert ticketgate("db", "backup", str(backup), config=config).returncode == 1  # never overwrites

    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    restored_port = free_port()
    restored = write_config(restored_dir, f"sqlite:///{backup}", listen=f"127.0.0.1:{restored_port}")
    copied = ticketgate("tickets", "list", "--json", config=restored).json()
    everything = ticketgate("tickets", "list", "--json", config=config).json()
    # serve leaves mail it had not begun for its next start: every sent mail is accepted, not yet
    # every one a ticket.
    assert 3 <= len(copied) <= len(everything) <= len(sent)
    with closing(sqlite3.connect(tmp_path / "tg.db")) as db:
        assert db.execute("SELECT count(*) FROM inbox").fetchone()[0] == len(sent)
    assert {t["title"] for t in copied} <= set(sent)
    with closing(sqlite3.connect(backup)) as db:
        in_copy = db.execute("SELECT count(*) FROM inbox").fetchone()[0]
    # Restore = start from the copy: it serves, takes up the mail the copy holds but had not made a
    # ticket of yet (each mail is a customer's first: a ticket each), and new mail continues the numbering.
    serve = ServeProcess(["--config", str(restored)], restored_dir, restored_port)
    try:
        with smtplib.SMTP("127.0.0.1", restored_port, timeout=30) as client:
            client.sendmail(
                "maria@customer.example", ["support@smilepass.example"], make_mail("After restore")
            )
        _wait_for_tickets(backup, in_copy + 1, serve)
    finally:
        assert serve.stop() == 0
    titles = [t["title"] for t in ticketgate("tickets", "list", "--json", config=restored).json()]
    assert "After restore" in titles and len(titles) == in_copy + 1


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path, fresh_postgres: str) -> None:
    config = write_config(tmp_path, fresh_postgres)
    refused = ticketgate("db", "backup", str(tmp_path / "copy"), config=config)
    assert refused.returncode == 1
    assert "pg_dump" in refused.stderr
    assert not (tmp_path / "copy").exists()
