"""The images of a staff notification are named in the queued mail and read from the blob store when
it is sent: every placeholder filled, headers kept as built, a blob that is gone left out, and text
a customer wrote never taken for a placeholder."""

from __future__ import annotations

import io
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from PIL import Image

from gateway.mail.screenshots import THUMBNAIL_SIZE
from gateway.notify.blob_parts import fill_blob_parts
from gateway.notify.message import BLOB_HEADER, FilePart, build_message
from gateway.notify.render import Rendered
from gateway.notify.staff_files import THUMBNAIL_SIDE, human_size
from gateway.store.blobs import FileBlobStore
from tests.unit.test_notify_message import headers


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_placeholders_are_filled_from_the_store_and_the_headers_stay_as_built(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    thumb, original = png((1, 2, 3)), png((200, 0, 0))
    files = [
        FilePart(blobs.put(thumb), "shot-thumbnail.png", "shot1.tg.SP-42.o17.ab@smilepass.example"),
        FilePart(blobs.put(original), "Bildschirmfoto ü.png"),
    ]
    long_title = "Zahlung schlägt fehl " * 8  # a Subject folded over several lines
    rendered = Rendered(text="Hello\n", html='<p><img src="cid:shot1.tg.SP-42.o17.ab@smilepass.example"></p>')
    queued = build_message(headers(subject=f"[SP-42] {long_title}"), rendered, files)
    assert len(queued) < 3000  # the outbox row holds names, not pictures

    sent = fill_blob_parts(queued, blobs, outbox_id=17)

    assert sent.split(b"\r\n\r\n", 1)[0] == queued.split(b"\r\n\r\n", 1)[0]
    assert BLOB_HEADER.encode() not in sent
    mail = parse(sent)
    assert mail.get_content_type() == "multipart/mixed"
    [related] = [part for part in mail.walk() if part.get_content_type() == "multipart/related"]
    inline = [part for part in related.iter_parts() if part.get_content_type() == "image/png"]
    assert [part.get_content() for part in inline] == [thumb]
    assert inline[0]["Content-ID"] == "<shot1.tg.SP-42.o17.ab@smilepass.example>"
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "Bildschirmfoto ü.png"
    assert attached.get_content() == original
    assert mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n") == "Hello\n"


def test_an_erased_blob_is_left_out_and_the_mail_still_goes(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    kept = blobs.put(png((0, 0, 0)))
    gone = blobs.put(png((9, 9, 9)))
    queued = build_message(
        headers(), Rendered(text="Hi\n", html="<p>Hi</p>"), [FilePart(kept, "a.png"), FilePart(gone, "b.png")]
    )
    blobs.delete(gone)
    mail = parse(fill_blob_parts(queued, blobs, outbox_id=1))
    assert [part.get_filename() for part in mail.iter_attachments()] == ["a.png"]


def test_a_mail_without_placeholders_goes_byte_for_byte_and_customer_text_asks_for_nothing(
    tmp_path: Path,
) -> None:
    blobs = FileBlobStore(tmp_path)
    secret = blobs.put(png((5, 5, 5)))
    text = f"Hello\n{BLOB_HEADER}: {secret}\n"
    plain = build_message(headers(), Rendered(text=text, html=f"<p>{text}</p>"))
    assert fill_blob_parts(plain, blobs, outbox_id=1) == plain
    with_files = build_message(
        headers(), Rendered(text=text, html="<p>x</p>"), [FilePart(blobs.put(b"\x89PNG one"), "a.png")]
    )
    mail = parse(fill_blob_parts(with_files, blobs, outbox_id=1))
    assert [part.get_content_type() for part in mail.walk() if not part.is_multipart()] == [
        "text/plain",
        "text/html",
        "image/png",
    ]
    assert mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n") == text


def test_sizes_read_as_staff_read_them_and_the_thumbnail_side_is_the_pipelines() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 5 * 1024, 10 * 1024 * 1024)] == [
        "0 bytes",
        "1023 bytes",
        "1 KB",
        "5 KB",
        "10.0 MB",
    ]
    assert (THUMBNAIL_SIDE, THUMBNAIL_SIDE) == THUMBNAIL_SIZE


def test_a_damaged_blob_is_left_out_and_both_bodies_name_the_file(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    kept = blobs.put(png((0, 0, 0)))
    damaged = blobs.put(png((9, 9, 9)))
    name = "Zahlung <fehlgeschlagen> ü.png"  # not ASCII, and HTML it must not become
    queued = build_message(
        headers(),
        Rendered(text="Hi\n", html="<html><body><p>Hi</p></body></html>"),
        [FilePart(kept, "a.png"), FilePart(damaged, name)],
    )
    path = blobs.path_of(damaged)
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01
    path.write_bytes(bytes(data))

    mail = parse(fill_blob_parts(queued, blobs, outbox_id=3))

    assert [part.get_filename() for part in mail.iter_attachments()] == ["a.png"]
    text = mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    html = mail.get_body(preferencelist=("html",)).get_content()
    note = f"ticketgate could not attach {name}: the stored copy is damaged"
    assert text.startswith("Hi\n") and f"[{note}" in text
    assert "Zahlung &lt;fehlgeschlagen&gt; ü.png: the stored copy is damaged" in html
    assert html.rstrip().endswith("</em></p></body></html>")
