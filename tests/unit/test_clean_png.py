"""Screenshots that are clean PNGs already are kept as they came, without their metadata
(gateway/mail/clean_png.py): a user sees the same picture as normalising would give, in a file
that holds nothing but the pixels; anything else still goes through normalising."""

from __future__ import annotations

import io
import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, PngImagePlugin

from gateway.domain import ParsedAttachment
from gateway.mail.clean_png import PNG_SIGNATURE, clean_png
from gateway.mail.screenshots import ImageLimits, sort_attachments


def encode(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def chunks(data: bytes) -> list[bytes]:
    found, position = [], len(PNG_SIGNATURE)
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        found.append(data[position + 4 : position + 8])
        position += 12 + length
    return found


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_chunk_after_ihdr(png: bytes, extra: bytes) -> bytes:
    cut = len(PNG_SIGNATURE) + 12 + 13
    return png[:cut] + extra + png[cut:]


def screenshot(payload: bytes) -> tuple[bytes, Image.Image]:
    part = ParsedAttachment(filename="s.png", content_type="image/png", payload=payload, content_id=None)
    [shot] = sort_attachments([part], limits=ImageLimits()).screenshots
    return shot.png, Image.open(io.BytesIO(shot.png))


def picture(width: int, height: int, mode: str, seed: int) -> Image.Image:
    noise = bytes((seed * 7 + i * 13) % 256 for i in range(width * height * len(mode)))
    image = Image.frombytes(mode, (width, height), noise)
    if mode == "RGBA":
        image.putpixel((0, 0), (1, 2, 3, 100))  # some alpha in use
    return image


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(64, 200),
    height=st.integers(64, 120),
    mode=st.sampled_from(["RGB", "RGBA"]),
    seed=st.integers(0, 255),
    level=st.integers(0, 9),
    metadata=st.lists(
        st.sampled_from([b"tEXt", b"iTXt", b"zTXt", b"pHYs", b"gAMA", b"tIME", b"sRGB", b"prVt"]), max_size=4
    ),
)
def test_a_clean_png_is_kept_as_it_came_without_its_metadata(
    width: int, height: int, mode: str, seed: int, level: int, metadata: list[bytes]
) -> None:
    image = picture(width, height, mode, seed)
    original = encode(image, compress_level=level)
    payload = original
    for kind in metadata:
        payload = with_chunk_after_ihdr(
            payload, chunk(kind, b"GPS 51.5N secret" if kind != b"sRGB" else b"\0")
        )

    kept, shown = screenshot(payload)

    assert kept == original  # the pixel data as it came: nothing re-encoded, every metadata chunk gone
    assert chunks(kept) == [b"IHDR", *[b"IDAT"] * (len(chunks(original)) - 2), b"IEND"]
    assert shown.mode == mode and shown.tobytes() == image.tobytes()


def test_a_png_normalising_would_change_is_normalised() -> None:
    image = picture(100, 80, "RGB", 3)
    plain = encode(image)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rotated = Image.Exif()
    rotated[0x0112] = 6
    opaque_rgba = encode(image.convert("RGBA"))
    cases = {
        "icc profile": encode(image, icc_profile=srgb),
        "transparency": encode(image, transparency=(1, 2, 3)),
        "exif orientation": encode(image, exif=rotated.tobytes()),
        "palette": encode(image.convert("P")),
        "16-bit grey": encode(image.convert("I;16")),
        "unused alpha": opaque_rgba,
        "bytes after IEND": plain + b"hidden",
        "bytes after the zlib stream": _with_idat(plain, zlib.compress(_rows(image)) + b"hidden"),
    }
    for name, payload in cases.items():
        kept, _ = screenshot(payload)
        assert kept != payload, name
        assert chunks(kept) == [b"IHDR", b"IDAT", b"IEND"], name
    assert clean_png(plain + b"hidden") is None
    assert clean_png(_with_idat(plain, zlib.compress(_rows(image)) + b"hidden")) is None
    assert clean_png(opaque_rgba) is not None  # the file is clean: the caller sees the alpha unused
    # Turned upright and still the picture: width and height swap.
    assert screenshot(cases["exif orientation"])[1].size == (80, 100)


def test_damaged_pngs_are_not_clean() -> None:
    plain = encode(picture(100, 80, "RGB", 5))
    flipped = bytearray(plain)
    flipped[-20] ^= 0xFF  # inside IDAT: its CRC no longer holds
    assert clean_png(bytes(flipped)) is None
    assert clean_png(plain[:-12]) is None  # no IEND
    assert clean_png(plain[:50]) is None
    assert clean_png(b"not a png") is None
    assert clean_png(PNG_SIGNATURE + chunk(b"IEND", b"")) is None  # no IHDR


def _rows(image: Image.Image) -> bytes:
    width, height = image.size
    raw = image.tobytes()
    return b"".join(b"\0" + raw[y * width * 3 : (y + 1) * width * 3] for y in range(height))


def _with_idat(png: bytes, data: bytes) -> bytes:
    header = png[: len(PNG_SIGNATURE) + 12 + 13]
    return header + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _with_ihdr(png: bytes, **fields: int) -> bytes:
    """`png` with IHDR fields changed (its CRC made right again)."""
    start = len(PNG_SIGNATURE) + 8
    names = ("width", "height", "depth", "colour", "compression", "filtering", "interlace")
    values = dict(zip(names, struct.unpack(">IIBBBBB", png[start : start + 13]), strict=True)) | fields
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", *values.values()))
    return png[: len(PNG_SIGNATURE)] + header + png[len(PNG_SIGNATURE) + 25 :]


def test_headers_we_do_not_write_are_not_clean() -> None:
    plain = encode(picture(100, 80, "RGB", 5))
    assert clean_png(plain) is not None
    assert clean_png(_with_ihdr(plain, interlace=1)) is None
    assert clean_png(_with_ihdr(plain, depth=16)) is None
    assert clean_png(_with_ihdr(plain, colour=0)) is None
    assert clean_png(_with_ihdr(plain, height=81)) is None  # the rows do not add up


def test_pillow_keeps_png_text_in_info_so_the_test_above_means_something() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret")
    payload = encode(picture(80, 80, "RGB", 9), pnginfo=info)
    assert b"tEXt" in chunks(payload)
    kept, shown = screenshot(payload)
    assert b"secret" not in kept and "Comment" not in shown.info
