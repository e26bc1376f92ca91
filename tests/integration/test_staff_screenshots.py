"""Screenshots in staff mail (SPEC §12), end to end: a customer's mail with screenshots and a PDF goes
over SMTP into `ticketgate serve`, whose notifications reach a real SMTP sink. The staff mail shows
each screenshot as an inline thumbnail (every `cid:` resolves to a PNG part), attaches the originals
that fit in `notifications.max_attached_bytes`, says which do not, and lists the PDF by name and size;
the customer's acknowledgement carries none of it. Run with the folder blob store (SQLite) and the
database blob store (PostgreSQL): the images are read from the store when the mail is sent."""

from __future__ import annotations

import io
import random
import re
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import ServeProcess, free_port, write_config
from tests.integration.smtp_sink import Captured, SmtpSink

MARIA = "maria@customer.example"
SUPPORT = "support@smilepass.example"
TRIAGE = "triage@smilepass.example"
LIMIT = 100_000  # bytes of originals per staff mail in this test
PDF = (b"%PDF-1.4\n" + b"%" * 5200)[: 5 * 1024 - 6] + b"%%EOF\n"  # 5 KB


def flat_png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """One colour: a few KB as PNG, well within the limit."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def noisy_png(width: int, height: int) -> bytes:
    """Random pixels do not compress: ~3 bytes a pixel, over the limit however it is encoded."""
    noise = random.Random(15).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), noise).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def serve(tmp_path: Path, database_url: str, sink: SmtpSink) -> Iterator[ServeProcess]:
    port = free_port()
    config = write_config(
        tmp_path, database_url, f"[notifications]\nmax_attached_bytes = {LIMIT}\n", listen=f"127.0.0.1:{port}"
    )
    text = config.read_text(encoding="utf-8")
    text = text.replace(f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"')
    if database_url.startswith("postgresql"):  # the other blob store: bytes in the database
        text = text.replace("[storage]\n", '[storage]\nblobs = "database"\n')
    config.write_text(text, encoding="utf-8")
    running = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        yield running
    finally:
        assert running.stop() == 0, running.output()


def wait_for(sink: SmtpSink, count: int, serve: ServeProcess) -> list[Captured]:
    deadline = time.monotonic() + 30
    while len(sink.captured) < count:
        assert time.monotonic() < deadline, f"{len(sink.captured)} of {count} mails sent:\n{serve.output()}"
        time.sleep(0.1)
    return list(sink.captured)


def send(port: int, msg: EmailMessage, rcpt: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        assert client.sendmail(MARIA, [rcpt], msg.as_bytes()) == {}


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def thumbnails(mail: EmailMessage) -> dict[str, tuple[int, int]]:
    """cid → (width, height) of the image each `cid:` of the HTML part resolves to; every cid must
    resolve to an image/png part of the multipart/related around the HTML."""
    html_part = mail.get_body(preferencelist=("html",))
    assert html_part is not None
    cids = re.findall(r'src="cid:([^"]+)"', html_part.get_content())
    related = [part for part in mail.walk() if part.get_content_type() == "multipart/related"]
    assert len(related) == 1
    by_cid = {
        str(part["Content-ID"]).strip("<>"): part
        for part in related[0].iter_parts()
        if part["Content-ID"] is not None
    }
    found = {}
    for cid in cids:
        assert cid in by_cid, f"cid:{cid} resolves to no part"
        part = by_cid[cid]
        assert part.get_content_type() == "image/png"
        found[cid] = image_size(part.get_content())
    return found


def originals(mail: EmailMessage) -> dict[str, bytes]:
    attached = {}
    for part in mail.iter_attachments():
        if part.get_content_disposition() == "attachment":
            assert part.get_content_type() == "image/png"
            attached[str(part.get_filename())] = part.get_content()
    return attached


def parts_of(mail: EmailMessage) -> list[str]:
    return [part.get_content_type() for part in mail.walk() if not part.is_multipart()]


def test_staff_mail_shows_the_new_screenshots_and_the_customer_gets_none_back(
    serve: ServeProcess, sink: SmtpSink
) -> None:
    small, big = flat_png(800, 500, (30, 120, 200)), noisy_png(400, 300)
    assert len(small) < LIMIT < len(big)
    msg = EmailMessage()
    msg["From"] = f"Maria <{MARIA}>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Checkout button does nothing"
    msg["Message-ID"] = "<shots-1@customer.example>"
    msg.set_content("I click Pay and nothing happens. Firefox 132 on Windows 11.")
    msg.add_attachment(small, maintype="image", subtype="png", filename="checkout.png")
    msg.add_attachment(big, maintype="image", subtype="png", filename="console.png")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    send(serve.port, msg, SUPPORT)

    first = wait_for(sink, 2, serve)
    [ack] = [mail.message for mail in first if mail.rcpt_tos == (MARIA,)]
    [staff] = [mail.message for mail in first if mail.rcpt_tos == (TRIAGE,)]

    # The customer is not sent their own files back.
    assert parts_of(ack) == ["text/plain", "text/html"]
    assert list(ack.iter_attachments()) == []

    # Each screenshot inline as a thumbnail, by cid, in the order sent.
    shown = thumbnails(staff)
    assert list(shown.values()) == [(320, 200), (320, 240)]
    # The original that fits is attached; the one past the limit is not, and the mail says so.
    attached = originals(staff)
    assert list(attached) == ["checkout.png"]
    assert image_size(attached["checkout.png"]) == (800, 500)
    assert sum(len(data) for data in attached.values()) <= LIMIT
    text = staff.get_body(preferencelist=("plain",)).get_content()
    html = staff.get_body(preferencelist=("html",)).get_content()
    assert re.search(r"1\. checkout\.png, 800x500, [\d.]+ KB:\s+original attached", text), text
    assert re.search(r"2\. console\.png, 400x300, [\d.]+ KB:\s+thumbnail only \(the originals", text), text
    assert "ticketgate tickets screenshot SP-1 2" in text
    assert "thumbnail only" in html
    # The PDF is listed by name and size, not attached.
    assert "invoice.pdf (5 KB)" in text
    assert re.search(r"invoice\.pdf</td>\s*<td[^>]*>5 KB<", html), html
    assert "application/pdf" not in parts_of(staff)

    # The customer writes again with one more screenshot: staff see that one only.
    reply_to = parseaddr(str(ack["Reply-To"]))[1]
    again = EmailMessage()
    again["From"] = f"Maria <{MARIA}>"
    again["To"] = reply_to
    again["Subject"] = f"Re: {ack['Subject']}"
    again["Message-ID"] = "<shots-2@customer.example>"
    again["In-Reply-To"] = str(ack["Message-ID"])
    again.set_content("Here is the error after the update.")
    again.add_attachment(flat_png(200, 100, (200, 40, 40)), maintype="image", subtype="png", filename="e.png")
    send(serve.port, again, reply_to)

    [reply] = [mail.message for mail in wait_for(sink, 3, serve)[2:]]
    assert parseaddr(str(reply["To"]))[1] == TRIAGE
    assert list(thumbnails(reply).values()) == [(200, 100)]  # smaller than a thumbnail: as it is
    assert list(originals(reply)) == ["e.png"]
    reply_text = reply.get_body(preferencelist=("plain",)).get_content()
    assert "3. e.png, 200x100" in reply_text
    assert "checkout.png" not in reply_text and "invoice.pdf" not in reply_text
