"""A damaged or missing blob (SPEC §15), end to end with `ticketgate serve` and a real SMTP sink: a
staff notification whose screenshot was damaged on disk (one byte flipped) or in the database after
it was queued goes without that file and says so; the same picture arriving again repairs the
stored copy; `tickets screenshot` on a damaged or missing blob says so in one line and exits 1.
Run with the folder blob store (SQLite) and the database blob store (PostgreSQL)."""

from __future__ import annotations

import hashlib
import io
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, update

from gateway.store.db import make_engine
from gateway.store.models import Blob
from tests.helpers import ServeProcess, free_port, ticketgate, write_config
from tests.integration.smtp_sink import Captured, SmtpSink

MARIA = "maria@customer.example"
SUPPORT = "support@smilepass.example"
TRIAGE = "triage@smilepass.example"


def flat_png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, database_url: str, sink: SmtpSink) -> Path:
    path = write_config(
        tmp_path,
        database_url,
        "[notifications]\nretry_base_seconds = 0.2\nretry_max_seconds = 0.2\nmax_attempts = 10000\n",
        listen=f"127.0.0.1:{free_port()}",
    )
    text = path.read_text(encoding="utf-8")
    text = text.replace(f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"')
    if database_url.startswith("postgresql"):
        text = text.replace("[storage]\n", '[storage]\nblobs = "database"\n')
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def serve(tmp_path: Path, config: Path) -> Iterator[ServeProcess]:
    port = int(config.read_text(encoding="utf-8").split('listen = "127.0.0.1:')[1].split('"')[0])
    running = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        yield running
    finally:
        assert running.stop() == 0, running.output()


class StoredBlobs:
    """The stored copy of a blob, reached behind ticketgate's back, as a disk or a restore would."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.folder = tmp_path / "blobs"
        self.database_url = database_url

    def _path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / sha256[2:4] / sha256

    def read(self, sha256: str) -> bytes | None:
        if self.database_url.startswith("sqlite"):
            path = self._path(sha256)
            return path.read_bytes() if path.exists() else None
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                data = connection.execute(select(Blob.data).where(Blob.sha256 == sha256)).scalar()
        finally:
            engine.dispose()
        return None if data is None else bytes(data)

    def write(self, sha256: str, data: bytes | None) -> None:
        """Replace the stored bytes (`None`: remove them)."""
        if self.database_url.startswith("sqlite"):
            path = self._path(sha256)
            if data is None:
                path.unlink()
            else:
                path.write_bytes(data)
            return
        engine = make_engine(self.database_url)
        try:
            with engine.begin() as connection:
                if data is None:
                    connection.execute(Blob.__table__.delete().where(Blob.sha256 == sha256))
                else:
                    connection.execute(update(Blob).where(Blob.sha256 == sha256).values(data=data))
        finally:
            engine.dispose()

    def flip_a_byte(self, sha256: str) -> None:
        data = bytearray(self.read(sha256) or b"")
        data[len(data) // 2] ^= 0x01
        self.write(sha256, bytes(data))


@pytest.fixture
def stored(tmp_path: Path, database_url: str) -> StoredBlobs:
    return StoredBlobs(tmp_path, database_url)


def mail_with(subject: str, image: bytes, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Maria <{MARIA}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("The checkout button does nothing; screenshot attached.")
    msg.add_attachment(image, maintype="image", subtype="png", filename="checkout.png")
    return msg


def send(port: int, msg: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        assert client.sendmail(MARIA, [SUPPORT], msg.as_bytes()) == {}


def wait_for(sink: SmtpSink, rcpt: str, count: int, serve: ServeProcess) -> list[Captured]:
    deadline = time.monotonic() + 30
    while True:
        found = [mail for mail in sink.captured if mail.rcpt_tos == (rcpt,)]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} of {count} mails to {rcpt}:\n{serve.output()}"
        time.sleep(0.1)


def refused_tries(serve: ServeProcess) -> int:
    """How many delivery attempts the sink has refused so far (the daemon logs each retry)."""
    return serve.output().count("451 4.3.0 Temporary local problem, try again later; retry in")


def after_two_more_tries(serve: ServeProcess) -> None:
    """Wait until two more attempts were refused: the second began after this call, so it read
    the blob store as it is now (an attempt reads its images just before it talks to the relay)."""
    target = refused_tries(serve) + 2
    deadline = time.monotonic() + 30
    while refused_tries(serve) < target:
        assert time.monotonic() < deadline, serve.output()
        time.sleep(0.1)


def attachments(mail: EmailMessage) -> dict[str, bytes]:
    return {
        str(part.get_filename()): part.get_content()
        for part in mail.iter_attachments()
        if part.get_content_disposition() == "attachment"
    }


def screenshot_of(config: Path, ref: str) -> dict[str, str]:
    shown = ticketgate("tickets", "show", ref, "--json", config=config)
    assert shown.returncode == 0, shown.stderr
    [shot] = shown.json()["screenshots"]
    return dict(shot)


def test_a_damaged_screenshot_leaves_the_staff_mail_without_it_and_the_same_image_repairs_it(
    serve: ServeProcess,
    sink: SmtpSink,
    config: Path,
    stored: StoredBlobs,
    tmp_path: Path,
) -> None:
    image = flat_png(800, 500, (30, 120, 200))
    sink.refuse(TRIAGE, 451)  # the staff mail waits in the outbox while the blob is damaged
    send(serve.port, mail_with("Checkout button does nothing", image, "<damaged-1@customer.example>"))
    wait_for(sink, MARIA, 1, serve)  # the acknowledgement: the ticket and its screenshot exist
    sha256 = screenshot_of(config, "SP-1")["sha256"]
    good = stored.read(sha256)
    assert good is not None and hashlib.sha256(good).hexdigest() == sha256

    stored.flip_a_byte(sha256)
    after_two_more_tries(serve)
    sink.accept(TRIAGE)
    [staff] = [mail.message for mail in wait_for(sink, TRIAGE, 1, serve)]

    # The mail went, without the damaged original, and says which file is missing and why.
    assert "checkout.png" not in attachments(staff)
    text = staff.get_body(preferencelist=("plain",)).get_content()
    html = staff.get_body(preferencelist=("html",)).get_content()
    assert "could not attach checkout.png: the stored copy is damaged" in text, text
    assert "could not attach checkout.png: the stored copy is damaged" in html, html
    # The thumbnail was not damaged: still shown inline.
    assert any(part.get_content_type() == "image/png" for part in staff.walk())
    assert "checkout.png left out" in serve.output()
    outbox = ticketgate("outbox", "list", "--json", config=config)
    assert outbox.returncode == 0, outbox.stderr
    assert {row["status"] for row in outbox.json()} == {"sent"}, outbox.stdout

    # The command says so in one line, exit 1, no traceback.
    out = tmp_path / "shot.png"
    damaged = ticketgate("tickets", "screenshot", "SP-1", "1", "--out", str(out), config=config)
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert "Traceback" not in damaged.stderr
    [line] = damaged.stderr.strip().splitlines()
    assert line.startswith("ticketgate: SP-1 screenshot 1: ") and "does not match its hash" in line, line
    assert not out.exists()

    # The same image arriving again (another customer mail) repairs the stored copy.
    send(serve.port, mail_with("Still broken", image, "<damaged-2@customer.example>"))
    [_, second] = [mail.message for mail in wait_for(sink, TRIAGE, 2, serve)]
    assert attachments(second)["checkout.png"] == good
    assert stored.read(sha256) == good
    repaired = ticketgate("tickets", "screenshot", "SP-1", "1", "--out", str(out), config=config)
    assert repaired.returncode == 0, repaired.stderr
    assert out.read_bytes() == good


def test_a_missing_screenshot_is_one_line_from_the_cli_and_named_in_staff_mail(
    serve: ServeProcess,
    sink: SmtpSink,
    config: Path,
    stored: StoredBlobs,
    tmp_path: Path,
) -> None:
    image = flat_png(640, 400, (200, 60, 30))
    sink.refuse(TRIAGE, 451)
    send(serve.port, mail_with("Card declined", image, "<missing-1@customer.example>"))
    wait_for(sink, MARIA, 1, serve)
    sha256 = screenshot_of(config, "SP-1")["sha256"]
    stored.write(sha256, None)
    after_two_more_tries(serve)
    sink.accept(TRIAGE)
    [staff] = [mail.message for mail in wait_for(sink, TRIAGE, 1, serve)]
    assert "checkout.png" not in attachments(staff)
    text = staff.get_body(preferencelist=("plain",)).get_content()
    assert "could not attach checkout.png: the stored copy is missing" in text, text

    out = str(tmp_path / "x.png")
    missing = ticketgate("tickets", "screenshot", "SP-1", "1", "--out", out, config=config)
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    expected = f"ticketgate: SP-1 screenshot 1: blob {sha256} is missing from the blob store"
    assert missing.stderr.strip() == expected
