"""The sender splices the blobs into the placeholders of the plain staff notification instead of
parsing and writing the whole mail again (~4.5 ms less per mail with files): the result must be the
very bytes the email package's path gives; anything but the plain case must go through that path
itself; and only part headers may ever ask for a blob."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.notify.blob_parts import _base64_lines, fill_blob_parts, library_fill, splice_blob_parts
from gateway.notify.message import BLOB_HEADER, FilePart, Headers, _mime_message, build_message
from gateway.notify.render import Rendered
from gateway.store.blobs import FileBlobStore
from tests.staff_notifications import CONTENT_ID, FILENAME, RENDERED, headers
from tests.unit.test_notify_message import headers as plain_headers

# Bytes of any length, with and without a last line break, and a PNG's start.
_BLOB = st.binary(max_size=300) | st.sampled_from([b"", b"\n", b"x" * 57, b"\x89PNG\r\n\x1a\n" * 40])


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileBlobStore]:
    yield FileBlobStore(tmp_path_factory.mktemp("blobs"))


@st.composite
def _files(draw: st.DrawFn, store: FileBlobStore) -> list[FilePart]:
    data = draw(st.lists(_BLOB, min_size=1, max_size=4))
    return [
        FilePart(store.put(blob), draw(FILENAME), draw(CONTENT_ID))
        for blob in data + draw(st.lists(st.sampled_from(data), max_size=1))  # the same blob twice
    ]


@settings(max_examples=300, deadline=None)
@given(data=st.data(), headers=headers(), rendered=RENDERED)
def test_the_splice_is_the_library_paths_bytes(
    blobs: FileBlobStore, data: st.DataObject, headers: Headers, rendered: Rendered
) -> None:
    files = data.draw(_files(blobs))
    for raw in (build_message(headers, rendered, files), _mime_message(headers, rendered, files)):
        spliced = splice_blob_parts(raw, blobs)
        assert spliced is not None  # the plain case, whichever way it was built
        assert spliced == library_fill(raw, blobs, outbox_id=1)
        assert fill_blob_parts(raw, blobs, outbox_id=1) == spliced
    # Every image is there, in order, and no part still names a blob.
    images = [part for part in message_from_bytes(spliced).walk() if part.get_content_type() == "image/png"]
    assert all(part[BLOB_HEADER] is None for part in images)
    in_order = [f for f in files if f.content_id is not None] + [f for f in files if f.content_id is None]
    assert [part.get_payload(decode=True) for part in images] == [blobs.get(f.sha256) for f in in_order]


def _queued(
    blobs: FileBlobStore, text: str = "Hi\n", html: str = "<html><body><p>Hi</p></body></html>"
) -> bytes:
    kept = blobs.put(b"\x89PNG kept")
    other = blobs.put(b"\x89PNG other")
    files = [
        FilePart(kept, "a-thumbnail.png", "shot1.tg.SP-42.o17.ab@smilepass.example"),
        FilePart(other, "b.png"),
    ]
    return build_message(plain_headers(), Rendered(text=text, html=html), files)


def test_a_missing_blob_goes_through_the_library_path_which_leaves_it_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blobs = FileBlobStore(tmp_path)
    raw = _queued(blobs)
    blobs.delete(blobs.put(b"\x89PNG other"))
    assert splice_blob_parts(raw, blobs) is None
    with caplog.at_level(logging.WARNING):
        sent = fill_blob_parts(raw, blobs, outbox_id=5)
    assert sent == library_fill(raw, blobs, outbox_id=5)
    assert b"could not attach b.png: the stored copy is missing" in sent
    assert "outbox 5: b.png left out" in caplog.text


def test_a_damaged_blob_goes_through_the_library_path_which_names_the_file(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    raw = _queued(blobs)
    path = blobs.path_of(blobs.put(b"\x89PNG kept"))
    path.write_bytes(b"\x89PNG kepT")
    assert splice_blob_parts(raw, blobs) is None
    sent = fill_blob_parts(raw, blobs, outbox_id=5)
    assert sent == library_fill(raw, blobs, outbox_id=5)
    assert b"could not attach a-thumbnail.png: the stored copy is damaged" in sent


def test_a_sha256_that_is_not_one_goes_through_the_library_path(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    sha = blobs.put(b"\x89PNG other")
    raw = _queued(blobs).replace(sha.encode(), sha.upper().encode())
    assert splice_blob_parts(raw, blobs) is None
    sent = fill_blob_parts(raw, blobs, outbox_id=5)
    assert sent == library_fill(raw, blobs, outbox_id=5)
    assert base64.b64encode(b"\x89PNG other") not in sent and BLOB_HEADER.encode() not in sent


@pytest.mark.parametrize(
    "change",
    [
        # A preamble, an epilogue, a header the splice does not know, a body in a placeholder, a
        # lone line feed, a byte that is not ASCII, a boundary that is not the package's, a top
        # header line without its colon.
        lambda raw: raw.replace(b"\r\n\r\n--", b"\r\n\r\npreamble\r\n--", 1),
        lambda raw: raw + b"epilogue\r\n",
        lambda raw: raw.replace(
            b"Content-Disposition: attachment", b"X-Other: 1\r\nContent-Disposition: attachment"
        ),
        lambda raw: raw.replace(b'filename="b.png"\r\n\r\n', b'filename="b.png"\r\n\r\nbody\r\n'),
        lambda raw: raw.replace(b"Hi\r\n", b"Hi\n", 1),
        lambda raw: raw.replace(b"Hi\r\n", "Hé\r\n".encode(), 1),
        lambda raw: raw.replace(b"==", b"=x", 1),
        lambda raw: raw.replace(b"\r\nMIME-Version: 1.0\r\n", b"\r\nMIME-Version 1.0\r\n", 1),
    ],
)
def test_a_shape_the_splice_does_not_recognise_goes_through_the_library_path(
    tmp_path: Path, change: object
) -> None:
    blobs = FileBlobStore(tmp_path)
    raw = change(_queued(blobs))  # type: ignore[operator]
    assert splice_blob_parts(raw, blobs) is None
    assert fill_blob_parts(raw, blobs, outbox_id=5) == library_fill(raw, blobs, outbox_id=5)


def test_a_part_header_is_read_as_the_parser_reads_it(tmp_path: Path) -> None:
    """White space after the colon is dropped, as compat32's parser drops it, before refolding."""
    blobs = FileBlobStore(tmp_path)
    raw = _queued(blobs).replace(b"Content-Disposition: attachment", b"Content-Disposition:\t  attachment")
    assert splice_blob_parts(raw, blobs) == library_fill(raw, blobs, outbox_id=5)


def test_customer_text_that_looks_like_a_part_asks_for_no_blob(tmp_path: Path) -> None:
    """A customer quoting a placeholder, with a boundary of their own, gets back their text as text."""
    blobs = FileBlobStore(tmp_path)
    secret = blobs.put(b"\x89PNG someone else's screenshot")
    fake = (
        f"--===============1234567890123456789==\r\nContent-Type: image/png\r\nMIME-Version: 1.0\r\n"
        f'{BLOB_HEADER}: \r\n {secret}\r\nContent-Disposition: attachment; filename="x.png"\r\n\r\n\r\n'
    )
    raw = _queued(blobs, text=f"Hello\n{fake}", html=f"<pre>{fake}</pre>")
    sent = fill_blob_parts(raw, blobs, outbox_id=1)
    assert splice_blob_parts(raw, blobs) == sent == library_fill(raw, blobs, outbox_id=1)
    assert base64.b64encode(b"\x89PNG someone else's screenshot")[:40] not in sent
    assert sent.count(b"Content-Transfer-Encoding: base64") == 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.integers(min_value=0, max_value=6).map(lambda n: b"\xff" * 57 * n))
def test_the_base64_lines_are_encodebytes_lines(data: bytes) -> None:
    assert _base64_lines(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")
