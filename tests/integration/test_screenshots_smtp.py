"""Screenshots as a customer sends them, over real SMTP into `ticketgate serve`, and back out with
`ticketgate tickets screenshot`: sniffed by bytes, metadata gone, bombs refused, names made safe."""

from __future__ import annotations

import io
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import STORE_DOES_NOT_MATTER, ServeProcess, free_port, ticketgate, write_config
from tests.images import png_claiming


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 36.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Iterator[tuple[ServeProcess, Path]]:
    port = free_port()
    config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
    running = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        yield running, config
    finally:
        running.stop()


def test_attachments_sorted_over_smtp(desk: tuple[ServeProcess, Path], tmp_path: Path) -> None:
    running, config = desk
    msg = EmailMessage()
    msg["From"] = "Maria <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = "Checkout page broken, screenshots attached"
    msg["Message-ID"] = "<shots-1@customer.example>"
    msg.set_content("The ADD button does nothing. Browser: Firefox 132 on Windows 11.")
    msg.add_related(png(1, 1), maintype="image", subtype="gif", cid="<pixel@customer.example>")
    msg.add_attachment(png(640, 400), maintype="image", subtype="png", filename="checkout.png")
    msg.add_attachment(
        jpeg_with_gps(300, 200), maintype="application", subtype="octet-stream", filename="photo.dat"
    )
    msg.add_attachment(png_claiming(60000, 60000), maintype="image", subtype="png", filename="huge.png")
    msg.add_attachment(
        b"not an image at all\n", maintype="image", subtype="png", filename="../../etc/notes.png"
    )
    msg.add_attachment(
        b"%PDF-1.4\n%test\n", maintype="application", subtype="pdf", filename="C:\\Users\\m\\inv.pdf"
    )
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        assert client.sendmail("maria@customer.example", ["support@smilepass.example"], msg.as_bytes()) == {}

    ticket = _wait_for_ticket(config)

    shots = {s["filename"]: s for s in ticket["screenshots"]}
    assert set(shots) == {"checkout.png", "photo.dat"}
    assert (shots["checkout.png"]["width"], shots["checkout.png"]["height"]) == (640, 400)
    assert (shots["photo.dat"]["width"], shots["photo.dat"]["height"]) == (200, 300)  # orientation applied
    assert all(s["content_type"] == "image/png" for s in ticket["screenshots"])
    assert [r["filename"] for r in ticket["rejected_attachments"]] == ["huge.png"]
    assert "image too large" in ticket["rejected_attachments"][0]["reason"]
    kept = {a["filename"]: a for a in ticket["attachments"]}
    assert set(kept) == {"notes.png", "inv.pdf"}
    assert kept["notes.png"]["content_type"].startswith("text/plain")
    assert kept["inv.pdf"]["content_type"] == "application/pdf"
    assert any(e["kind"] == "attachment_rejected" for e in _show(config)["events"])

    number = [s["filename"] for s in ticket["screenshots"]].index("photo.dat") + 1
    out = tmp_path / "photo.png"
    run = ticketgate("tickets", "screenshot", ticket["ref"], str(number), "--out", str(out), config=config)
    assert run.returncode == 0, run.stderr
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert b"Exif" not in data and b"GPS" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (200, 300)
        assert not image.getexif()
    thumb = tmp_path / "thumb.png"
    assert (
        ticketgate(
            "tickets", "screenshot", ticket["ref"], "1", "--thumbnail", "--out", str(thumb), config=config
        ).returncode
        == 0
    )
    with Image.open(thumb) as image:
        assert max(image.size) <= 320
    missing = ticketgate("tickets", "screenshot", ticket["ref"], "9", "--out", str(out), config=config)
    assert missing.returncode == 1
    assert "has 2 screenshot(s)" in missing.stderr


def test_the_same_picture_is_stored_once(desk: tuple[ServeProcess, Path], tmp_path: Path) -> None:
    running, config = desk
    picture = png(500, 300, (1, 2, 3))
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        for n in range(2):
            msg = EmailMessage()
            msg["From"] = f"user{n}@customer.example"
            msg["To"] = "support@smilepass.example"
            msg["Subject"] = f"Same screenshot {n}"
            msg.set_content("See attached.")
            msg.add_attachment(picture, maintype="image", subtype="png", filename=f"shot{n}.png")
            client.sendmail(f"user{n}@customer.example", ["support@smilepass.example"], msg.as_bytes())

    deadline = time.monotonic() + 20
    while len(found := ticketgate("tickets", "list", "--json", config=config).json()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    hashes = {t["screenshots"][0]["sha256"] for t in found}
    assert len(hashes) == 1
    [sha] = hashes
    stored = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file() and p.name == sha]
    assert len(stored) == 1


def _show(config: Path) -> dict:
    return ticketgate("tickets", "show", "SP-1", "--json", config=config).json()


def _wait_for_tickets(config: Path, count: int) -> list[dict]:
    deadline = time.monotonic() + 20
    while len(found := ticketgate("tickets", "list", "--json", config=config).json()) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} tickets"
        time.sleep(0.1)
    return found


def _wait_for_ticket(config: Path) -> dict:
    deadline = time.monotonic() + 20
    while True:
        found = ticketgate("tickets", "list", "--json", config=config).json()
        if found:
            return found[0]
        assert time.monotonic() < deadline, "no ticket"
        time.sleep(0.2)


def test_a_logo_repeated_across_a_senders_mails_is_not_a_screenshot(desk: tuple[ServeProcess, Path]) -> None:
    running, config = desk
    logo = png(120, 60, (0, 90, 200))
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        for n in range(2):
            msg = EmailMessage()
            msg["From"] = "Bob <bob@customer.example>"
            msg["To"] = "support@smilepass.example"
            msg["Subject"] = f"Question {n}"
            msg.set_content(f"Question number {n}.\n\nBob\nACME Corp")
            msg.add_alternative(
                f'<p>Question number {n}.</p><p>Bob<br><img src="cid:logo@acme"></p>', subtype="html"
            )
            msg.get_payload()[1].add_related(logo, maintype="image", subtype="png", cid="<logo@acme>")
            client.sendmail("bob@customer.example", ["support@smilepass.example"], msg.as_bytes())
            found = _wait_for_tickets(config, n + 1)  # the second mail must come after the first is processed

    by_title = {t["title"]: t for t in found}
    assert len(by_title["Question 0"]["screenshots"]) == 1  # once, it may be a picture of something
    assert by_title["Question 1"]["screenshots"] == []  # again from the same sender: a logo


def _image_bytes(
    fmt: str, size: tuple[int, int] = (320, 240), colour: tuple[int, int, int] = (40, 160, 90)
) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


# Which formats decode is the image code's; storing screenshots and refusals: the first test, on both.
@STORE_DOES_NOT_MATTER
def test_every_image_format_and_a_truncated_one(desk: tuple[ServeProcess, Path]) -> None:
    running, config = desk
    msg = EmailMessage()
    msg["From"] = "Lee <lee@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = "All the formats"
    msg.set_content("One of each.")
    for fmt, name in [
        ("GIF", "a.gif"),
        ("WEBP", "b.webp"),
        ("HEIF", "IMG_0042.HEIC"),
        ("TIFF", "c.tif"),
        ("BMP", "d.bmp"),
    ]:
        # Each a different picture: the same picture twice in one mail is kept once.
        picture = _image_bytes(fmt, colour=(len(name) * 17 % 256, ord(name[0]), 90))
        msg.add_attachment(picture, maintype="application", subtype="octet-stream", filename=name)
    whole = _image_bytes("JPEG", (800, 600))
    msg.add_attachment(whole[: len(whole) // 2], maintype="image", subtype="jpeg", filename="cut.jpg")
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        client.sendmail("lee@customer.example", ["support@smilepass.example"], msg.as_bytes())

    ticket = _wait_for_ticket(config)

    assert sorted(s["filename"] for s in ticket["screenshots"]) == [
        "IMG_0042.HEIC",
        "a.gif",
        "b.webp",
        "c.tif",
        "d.bmp",
    ]
    assert all((s["width"], s["height"]) == (320, 240) for s in ticket["screenshots"])
    assert [r["filename"] for r in ticket["rejected_attachments"]] == ["cut.jpg"]
