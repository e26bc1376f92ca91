"""`ticketgate tickets export REF DIR` (SPEC §12): a mail sent over real SMTP into `ticketgate serve`,
a staff reply by the CLI, then the export read back as files: the originals byte for byte, the
attachment as sent, the screenshot as stored, the ticket JSON as `tickets show --json` gives it."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import ServeProcess, free_port, ticketgate, write_config

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[ServeProcess, Path]]:
    port = free_port()
    config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
    running = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        yield running, config
    finally:
        running.stop()


def wait_for_ticket(config: Path, ref: str, running: ServeProcess) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    while True:
        done = ticketgate("tickets", "show", ref, "--json", config=config)
        if done.returncode == 0 and done.json()["screenshots"]:
            return done.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, running.output()
        time.sleep(0.2)


def test_export_writes_originals_files_screenshots_and_json(
    served: tuple[ServeProcess, Path], tmp_path: Path
) -> None:
    running, config = served
    msg = EmailMessage()
    msg["From"] = "Maria Lopez <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = "Checkout broken, screenshot and log attached"
    msg["Message-ID"] = "<export-1@customer.example>"
    msg.set_content("The ADD button does nothing. Fran\u00e7ois saw it too.\n")
    msg.add_attachment(png(640, 400), maintype="image", subtype="png", filename="checkout.png")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="../../report.pdf")
    sent = msg.as_bytes()
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        assert client.sendmail("maria@customer.example", ["support@smilepass.example"], sent) == {}
    wait_for_ticket(config, "SP-1", running)
    reply = tmp_path / "reply.txt"
    reply.write_text("Thanks, we can see it in the screenshot.\n", encoding="utf-8")
    done = ticketgate(
        "tickets",
        "update",
        "SP-1",
        "--reply-file",
        str(reply),
        "--as",
        "ana@smilepass.example",
        config=config,
    )
    assert done.returncode == 0, done.stderr

    out = tmp_path / "export"
    done = ticketgate("tickets", "export", "sp-1", str(out), config=config)
    assert done.returncode == 0, done.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [
        "SP-1.json",
        "attachments/001-report.pdf",
        "messages/001-requester.eml",
        "messages/002-staff.eml",
        "screenshots/001-checkout.png",
    ]

    # The original as it came over SMTP: SMTP carries lines with CRLF and ends the data with one.
    original = (out / "messages/001-requester.eml").read_bytes()
    assert original.replace(b"\r\n", b"\n").rstrip(b"\n") == sent.replace(b"\r\n", b"\n").rstrip(b"\n")
    reparsed = email.message_from_bytes(original, policy=email.policy.default)
    assert isinstance(reparsed, EmailMessage)
    assert reparsed["Message-ID"] == "<export-1@customer.example>"
    parts = {part.get_filename(): part.get_content() for part in reparsed.iter_attachments()}
    assert parts["../../report.pdf"] == PDF
    assert (out / "attachments/001-report.pdf").read_bytes() == PDF

    staff = email.message_from_bytes(
        (out / "messages/002-staff.eml").read_bytes(), policy=email.policy.default
    )
    assert staff["From"] == "ana@smilepass.example"
    body = staff.get_body()
    assert body is not None
    assert "Thanks, we can see it in the screenshot." in body.get_content()

    ticket = ticketgate("tickets", "show", "SP-1", "--json", config=config).json()
    exported = (out / "SP-1.json").read_bytes()
    shot = (out / "screenshots/001-checkout.png").read_bytes()
    assert hashlib.sha256(shot).hexdigest() == ticket["screenshots"][0]["sha256"]
    assert Image.open(io.BytesIO(shot)).size == (640, 400)
    assert json.loads(exported)["messages"] == ticket["messages"]

    again = ticketgate("tickets", "export", "SP-1", str(out), config=config)
    assert again.returncode == 73 and "not an empty folder" in again.stderr
    missing = ticketgate("tickets", "export", "SP-9", str(tmp_path / "none"), config=config)
    assert missing.returncode == 1 and not (tmp_path / "none").exists()
