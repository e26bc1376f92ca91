"""Attachments sorted into screenshots, plain attachments, refused and ignored parts (SPEC §6).

Every image here is made by Pillow (and pillow-heif for HEIC) in the test itself; the hostile ones
(a bomb header, a truncated JPEG) are made from real images too.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import struct
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageFile, PngImagePlugin

from gateway.domain import ParsedAttachment
from gateway.mail.screenshots import (
    THUMBNAIL_SIZE,
    ImageLimits,
    PlainAttachment,
    SortedAttachments,
    fits_thumbnail,
    sniff_image,
    sort_attachments,
)
from tests.images import png_claiming

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)


# --- making test images -----------------------------------------------------------------------


def picture(size: tuple[int, int] = (200, 100), mode: str = "RGB") -> Image.Image:
    """A blue picture with a red block in its top-left corner, so orientation can be checked."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk_types(data: bytes) -> list[bytes]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    kinds, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kinds.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return kinds


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "SecretPhoneCo"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.5),
        ExifTags.GPS.GPSProcessingMethod: b"ASCII\x00\x00\x00GPS",
    }
    return exif


def icc_profile(red: tuple[float, float, float], green: tuple[float, float, float]) -> bytes:
    """A minimal ICC v2 RGB display profile (linear curves) with the given red and green primaries."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \x00\x00\x00\x00" + b"".join(s15(v) for v in values)

    curve = b"curv\x00\x00\x00\x00" + struct.pack(">I", 0)  # no entries: gamma 1.0
    blue = (0.1431, 0.0606, 0.7141)
    white = (0.9642, 1.0, 0.8249)
    tags = [
        (b"wtpt", xyz(white)),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\x00" * (-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\x00" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\x00" * 12
        + b"acsp"
        + b"\x00" * 28  # platform, flags, manufacturer, model, attributes, intent
        + xyz(white)[8:]
        + b"\x00" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


SRGB_RED_D50 = (0.4361, 0.2225, 0.0139)
SRGB_GREEN_D50 = (0.3851, 0.7169, 0.0971)


def part(
    payload: bytes,
    filename: str | None = "image.png",
    content_type: str = "image/png",
    content_id: str | None = None,
) -> ParsedAttachment:
    return ParsedAttachment(
        filename=filename,
        content_type=content_type,
        payload=payload,
        content_id=content_id,
        inline=content_id is not None,
    )


def sort(*parts: ParsedAttachment, **limits: int) -> SortedAttachments:
    return sort_attachments(parts, limits=ImageLimits(**limits))


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    image.load()
    return image


def close_to(actual: object, expected: tuple[int, ...], tolerance: int = 12) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --- every format the spec names ---------------------------------------------------------------

FORMATS = [
    ("PNG", "PNG", {}),
    ("JPEG", "JPEG", {"quality": 95}),
    ("GIF", "GIF", {}),
    ("WEBP", "WEBP", {"lossless": True}),
    ("BMP", "BMP", {}),
    ("TIFF", "TIFF", {}),
    ("HEIF", "HEIF", {"quality": 90}),
]


@pytest.mark.parametrize(("fmt", "expected", "options"), FORMATS, ids=[f[0] for f in FORMATS])
def test_each_image_format_becomes_a_clean_png_screenshot(
    fmt: str, expected: str, options: dict[str, object]
) -> None:
    payload = encode(picture(), fmt, **options)

    result = sort(part(payload, filename=f"shot.{fmt.lower()}", content_type="image/whatever"))

    assert sniff_image(payload) == expected
    assert len(result.screenshots) == 1, result
    shot = result.screenshots[0]
    assert shot.source_format == expected
    assert (shot.width, shot.height) == (200, 100)
    assert shot.sha256 == hashlib.sha256(shot.png).hexdigest()
    assert shot.filename == f"shot.{fmt.lower()}"
    # Nothing but the pixels: no text, EXIF, ICC, time or physical-size chunks.
    assert png_chunk_types(shot.png) == [b"IHDR", b"IDAT", b"IEND"]
    image = decoded(shot.png)
    assert image.mode == "RGB"
    assert close_to(image.getpixel((5, 5)), RED, 40)
    assert close_to(image.getpixel((150, 80)), BLUE, 40)
    thumbnail = decoded(shot.thumbnail)
    assert thumbnail.size == (200, 100)  # already inside 320x320: never enlarged


def test_declared_type_and_name_do_not_decide_what_is_an_image() -> None:
    payload = encode(picture(), "PNG")

    result = sort(part(payload, filename="data.dat", content_type="application/octet-stream"))

    assert [s.filename for s in result.screenshots] == ["data.dat"]
    assert result.attachments == ()


def test_inline_cid_image_counts_as_a_screenshot() -> None:
    payload = encode(picture(), "JPEG")

    result = sort(part(payload, filename=None, content_type="image/jpeg", content_id="<img1@client>"))

    assert [s.filename for s in result.screenshots] == ["screenshot-1.png"]


# --- metadata and orientation -----------------------------------------------------------------


def test_jpeg_with_gps_exif_and_orientation_comes_out_upright_and_without_metadata() -> None:
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">SecretXmpPayload</x:xmpmeta>'
    payload = encode(
        picture(),
        "JPEG",
        exif=exif_with_gps(orientation=6),
        comment=b"SecretComment",
        xmp=xmp,
        quality=95,
    )
    for secret in (b"Exif", b"GPS", b"SecretPhoneCo", b"SecretXmpPayload", b"SecretComment"):
        assert secret in payload  # the input really carries what must go

    (shot,) = sort(part(payload, filename="IMG_0001.JPG", content_type="image/jpeg")).screenshots

    for secret in (b"Exif", b"GPS", b"SecretPhoneCo", b"SecretXmpPayload", b"SecretComment", b"xmp"):
        assert secret not in shot.png
        assert secret not in shot.thumbnail
    image = decoded(shot.png)
    assert len(image.getexif()) == 0
    assert image.info == {}
    # Orientation 6 means "rotate 90° clockwise to show": the picture is now tall, and the red
    # block that was top-left is top-right.
    assert (shot.width, shot.height) == image.size == (100, 200)
    assert close_to(image.getpixel((95, 5)), RED, 40)
    assert close_to(image.getpixel((5, 5)), BLUE, 40)


def test_png_text_xmp_and_exif_chunks_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SecretComment")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>SecretXmpPayload</x:xmpmeta>")
    payload = encode(picture(), "PNG", pnginfo=info, exif=exif_with_gps(), dpi=(300, 300))
    assert {b"tEXt", b"iTXt", b"eXIf", b"pHYs"} <= set(png_chunk_types(payload))

    (shot,) = sort(part(payload)).screenshots

    assert png_chunk_types(shot.png) == [b"IHDR", b"IDAT", b"IEND"]
    assert b"Secret" not in shot.png


def test_heic_with_gps_exif_is_decoded_and_stripped() -> None:
    payload = encode(picture(), "HEIF", exif=exif_with_gps(), quality=90)
    assert b"GPS" in payload and b"SecretPhoneCo" in payload

    (shot,) = sort(part(payload, filename="IMG_0002.HEIC", content_type="image/heic")).screenshots

    assert shot.source_format == "HEIF"
    assert b"GPS" not in shot.png and b"Exif" not in shot.png and b"SecretPhoneCo" not in shot.png
    assert len(decoded(shot.png).getexif()) == 0


def test_colour_profile_is_applied_then_dropped() -> None:
    # A profile whose "red" channel holds sRGB green: a viewer that honours it shows green.
    swapped = icc_profile(red=SRGB_GREEN_D50, green=SRGB_RED_D50)
    payload = encode(Image.new("RGB", (100, 100), RED), "PNG", icc_profile=swapped)

    (shot,) = sort(part(payload)).screenshots

    assert b"iCCP" not in png_chunk_types(shot.png)
    assert close_to(decoded(shot.png).getpixel((50, 50)), GREEN, 20)


def test_srgb_profile_changes_no_colour_and_damaged_profile_is_ignored() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    colour = (30, 140, 220)
    with_srgb = encode(Image.new("RGB", (100, 100), colour), "PNG", icc_profile=srgb)
    with_junk = encode(Image.new("RGB", (100, 101), colour), "PNG", icc_profile=b"not a profile" * 20)

    result = sort(part(with_srgb), part(with_junk))

    assert len(result.screenshots) == 2, result
    for shot in result.screenshots:
        assert close_to(decoded(shot.png).getpixel((10, 10)), colour, 2)
        assert b"iCCP" not in png_chunk_types(shot.png)


# --- modes and frames -------------------------------------------------------------------------


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (100, 80), colour) for colour in (GREEN, RED, BLUE)]
    payload = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(payload)), "n_frames", 1) == 3

    (shot,) = sort(part(payload, filename="anim.gif")).screenshots

    assert shot.source_format == "GIF"
    assert decoded(shot.png).getpixel((50, 40)) == GREEN


def test_cmyk_jpeg_becomes_rgb() -> None:
    payload = encode(picture(mode="CMYK"), "JPEG", quality=95)

    (shot,) = sort(part(payload)).screenshots

    image = decoded(shot.png)
    assert image.mode == "RGB"
    assert close_to(image.getpixel((5, 5)), RED, 40)


def test_transparency_is_kept_and_unused_alpha_dropped() -> None:
    palette = Image.new("P", (100, 100), 0)
    palette.putpalette([*RED, *BLUE] + [0] * 762)
    palette.paste(1, (50, 0, 100, 100))
    transparent = encode(palette, "PNG", transparency=1)
    opaque_rgba = encode(picture(mode="RGBA"), "PNG")
    grey_alpha = Image.new("LA", (100, 100), (200, 255))
    grey_alpha.paste((200, 0), (0, 0, 10, 10))

    result = sort(part(transparent), part(opaque_rgba), part(encode(grey_alpha, "PNG")))

    modes = [decoded(shot.png) for shot in result.screenshots]
    assert [image.mode for image in modes] == ["RGBA", "RGB", "RGBA"]
    assert modes[0].getpixel((10, 10)) == (*RED, 255)
    assert modes[0].getpixel((80, 10)) == (*BLUE, 0)
    assert modes[2].getpixel((5, 5)) == (200, 200, 200, 0)
    assert modes[2].getpixel((50, 50)) == (200, 200, 200, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    row = struct.pack("<50H", *[32768] * 50) + struct.pack("<50H", *[65535] * 50)
    image = Image.frombytes("I;16", (100, 100), row * 100)
    assert image.getpixel((25, 50)) == 32768
    payload = encode(image, "PNG")

    (shot,) = sort(part(payload)).screenshots

    out = decoded(shot.png)
    assert out.mode == "RGB"
    assert out.getpixel((75, 50)) == (255, 255, 255)
    assert close_to(out.getpixel((25, 50)), (128, 128, 128), 1)


def test_thumbnail_fits_320_and_keeps_aspect() -> None:
    payload = encode(picture((1000, 500)), "PNG")

    (shot,) = sort(part(payload)).screenshots

    assert (shot.width, shot.height) == (1000, 500)
    thumbnail = decoded(shot.thumbnail)
    assert thumbnail.size == (320, 160)
    assert max(thumbnail.size) <= max(THUMBNAIL_SIZE)
    assert png_chunk_types(shot.thumbnail) == [b"IHDR", b"IDAT", b"IEND"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
def test_a_picture_within_the_bounds_is_its_own_thumbnail(fmt: str) -> None:
    payload = encode(picture((320, 200)), fmt)

    (shot,) = sort(part(payload)).screenshots

    # Not encoded twice: the same bytes, so the same blob, and the pixels Pillow's thumbnail keeps.
    assert shot.thumbnail == shot.png
    expected = decoded(shot.png).copy()
    expected.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    assert decoded(shot.thumbnail).tobytes() == expected.tobytes()


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 1200), st.integers(1, 1200))
def test_fits_thumbnail_is_when_pillow_leaves_a_picture_as_it_is(width: int, height: int) -> None:
    image = Image.new("RGB", (width, height), BLUE)
    thumb = image.copy()
    thumb.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)

    assert fits_thumbnail((width, height)) == (thumb.size == (width, height))


# --- limits and broken files ------------------------------------------------------------------


def test_header_claiming_60000_by_60000_pixels_is_refused_without_decoding() -> None:
    payload = png_claiming(60000, 60000)
    assert len(payload) < 100

    result = sort(part(payload, filename="bomb.png"))

    assert result.screenshots == () and result.attachments == ()
    (rejected,) = result.rejected
    assert rejected.filename == "bomb.png"
    assert rejected.reason.startswith("image too large")


@pytest.mark.parametrize(
    ("width", "height"),
    [(7000, 7000), (10000, 10000)],  # under and over Pillow's own bomb warning threshold
)
def test_pixel_limit_from_config_refuses_with_the_size(width: int, height: int) -> None:
    (rejected,) = sort(part(png_claiming(width, height))).rejected

    assert rejected.reason == f"image too large: {width}x{height} pixels exceeds 40000000"


def test_pixel_limit_is_per_call() -> None:
    payload = encode(picture((100, 100)), "PNG")

    assert sort(part(payload), max_pixels=9_999).rejected[0].reason == (
        "image too large: 100x100 pixels exceeds 9999"
    )
    assert len(sort(part(payload), max_pixels=10_000).screenshots) == 1


def test_image_file_over_max_bytes_is_refused() -> None:
    payload = encode(picture(), "PNG")

    (rejected,) = sort(part(payload), max_bytes=len(payload) - 1).rejected

    assert rejected.reason == f"image file too large: {len(payload)} bytes exceeds {len(payload) - 1}"


def test_truncated_jpeg_is_refused() -> None:
    payload = encode(Image.effect_noise((300, 300), 60).convert("RGB"), "JPEG")

    (rejected,) = sort(part(payload[: len(payload) // 2], filename="cut.jpg")).rejected

    assert rejected.filename == "cut.jpg"
    assert rejected.reason.startswith("not a readable image")
    assert "truncated" in rejected.reason


def test_truncated_images_are_never_loaded_half(monkeypatch: pytest.MonkeyPatch) -> None:
    # Someone flipping Pillow's global switch must not silently weaken the check.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)

    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        sort(part(encode(picture(), "PNG")))


def test_corrupt_png_is_refused() -> None:
    payload = bytearray(encode(Image.effect_noise((100, 100), 60), "PNG"))
    payload[60:80] = b"\xff" * 20

    (rejected,) = sort(part(bytes(payload), filename="broken.png")).rejected

    assert rejected.reason.startswith("not a readable image")
    assert "BytesIO" not in rejected.reason


def test_image_magic_with_garbage_after_is_refused_not_kept_as_file() -> None:
    (rejected,) = sort(part(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)).rejected

    assert rejected.reason.startswith("not a readable image")


# --- things that are not images ---------------------------------------------------------------


def test_text_file_named_png_is_a_plain_text_attachment() -> None:
    payload = b"this is not a picture\n" * 3

    result = sort(part(payload, filename="notes.png", content_type="image/png"))

    assert sniff_image(payload) is None
    assert result.screenshots == ()
    assert result.attachments == (PlainAttachment("notes.png", "text/plain", payload),)


def test_text_starting_with_bm_is_not_taken_for_a_bitmap() -> None:
    payload = b"BMW service log\nall fine\n"

    result = sort(part(payload, filename="log.txt", content_type="text/plain"))

    assert sniff_image(payload) is None
    assert result.attachments == (PlainAttachment("log.txt", "text/plain", payload),)


def test_plain_attachment_type_comes_from_the_bytes_then_the_declaration() -> None:
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    log = b"2024-05-01 ERROR boom\n"
    binary = bytes(range(256))

    result = sort(
        part(pdf, filename=None, content_type="application/octet-stream"),
        part(log, filename="app.log", content_type="Text/X-Log; charset=utf-8"),
        part(binary, filename="blob.png", content_type="image/png"),
    )

    assert [(a.filename, a.content_type) for a in result.attachments] == [
        ("attachment-1.pdf", "application/pdf"),
        ("app.log", "text/x-log"),
        ("blob.png", "application/octet-stream"),
    ]


def test_non_image_attachment_over_its_limit_is_refused() -> None:
    payload = b"x" * 1001

    result = sort(part(payload, filename="big.log", content_type="text/plain"), max_attachment_bytes=1000)

    assert result.attachments == ()
    assert result.rejected[0].reason == "attachment too large: 1001 bytes exceeds 1000"


# --- what is left out -------------------------------------------------------------------------


def test_tracking_pixel_and_small_logo_are_ignored() -> None:
    pixel = encode(Image.new("P", (1, 1), 0), "GIF", transparency=0)
    logo = encode(picture((40, 40)), "PNG")

    result = sort(part(pixel, filename="t.gif", content_id="<px@mailer>"), part(logo, filename="logo.png"))

    assert result.screenshots == () and result.rejected == ()
    assert result.ignored == (
        "t.gif: tiny image or tracking pixel 1x1 (both sides under 64 px)",
        "logo.png: tiny image or tracking pixel 40x40 (both sides under 64 px)",
    )


def test_only_images_with_both_sides_under_the_minimum_are_tiny() -> None:
    result = sort(
        part(encode(picture((63, 63)), "PNG"), filename="a.png"),
        part(encode(picture((64, 10)), "PNG"), filename="b.png"),
        part(encode(picture((10, 64)), "PNG"), filename="c.png"),
    )

    assert [s.filename for s in result.screenshots] == ["b.png", "c.png"]
    assert len(result.ignored) == 1 and result.ignored[0].startswith("a.png: tiny image")


def test_known_logo_is_ignored_by_its_picture_or_its_bytes() -> None:
    logo = encode(picture((300, 80)), "PNG")
    (first,) = sort(part(logo)).screenshots
    other_encoding = encode(picture((300, 80)), "BMP")

    by_picture = sort_attachments(
        [part(other_encoding, filename="logo.bmp")],
        limits=ImageLimits(),
        known_logo_hashes=frozenset({first.sha256}),
    )
    by_bytes = sort_attachments(
        [part(logo, filename="logo.png")],
        limits=ImageLimits(),
        known_logo_hashes=frozenset({hashlib.sha256(logo).hexdigest()}),
    )

    assert by_picture.screenshots == () and by_picture.ignored == ("logo.bmp: known logo",)
    assert by_bytes.screenshots == () and by_bytes.ignored == ("logo.png: known logo",)


def test_same_picture_twice_is_one_screenshot() -> None:
    payload = encode(picture(), "PNG")

    result = sort(part(payload, filename="a.png"), part(payload, filename=None, content_id="<x@y>"))

    assert [s.filename for s in result.screenshots] == ["a.png"]
    assert result.ignored == ("screenshot-2.png: same picture as a.png",)


def test_same_pixels_in_any_lossless_format_give_one_hash() -> None:
    image = picture()
    hashes = {
        sort(part(encode(image, fmt, **options))).screenshots[0].sha256
        for fmt, options in [
            ("PNG", {}),
            ("BMP", {}),
            ("TIFF", {}),
            ("WEBP", {"lossless": True}),
        ]
    }
    rgba_opaque = sort(part(encode(image.convert("RGBA"), "PNG"))).screenshots[0].sha256

    assert hashes == {rgba_opaque}


def test_same_pixels_in_any_lossless_format_in_one_mail_are_one_screenshot() -> None:
    # An optimised PNG is clean and kept as it came (its own bytes, another hash), yet still the
    # same picture as the BMP and the PNG we would write.
    image = picture()
    formats = [("PNG", {"optimize": True}), ("BMP", {}), ("PNG", {}), ("WEBP", {"lossless": True})]
    parts = [
        part(encode(image, fmt, **options), filename=f"{n}.img") for n, (fmt, options) in enumerate(formats)
    ]

    result = sort(*parts)

    assert [s.filename for s in result.screenshots] == ["0.img"]
    assert result.ignored == tuple(f"{n}.img: same picture as 0.img" for n in (1, 2, 3))


def test_over_count_parts_are_refused_and_ignored_parts_do_not_count() -> None:
    tiny = encode(picture((10, 10)), "PNG")
    shots = [encode(picture((100 + n, 100)), "PNG") for n in range(3)]

    result = sort(
        part(tiny, filename="icon.png"),
        part(shots[0], filename="one.png"),
        part(b"log line\n", filename="two.log", content_type="text/plain"),
        part(shots[1], filename="three.png"),
        part(shots[2], filename="four.png"),
        max_attachments=2,
    )

    assert [s.filename for s in result.screenshots] == ["one.png"]
    assert [a.filename for a in result.attachments] == ["two.log"]
    assert [(r.filename, r.reason) for r in result.rejected] == [
        ("three.png", "too many attachments: only the first 2 are kept"),
        ("four.png", "too many attachments: only the first 2 are kept"),
    ]
    assert len(result.ignored) == 1


def test_names_are_sanitised_everywhere() -> None:
    image = encode(picture(), "PNG")

    result = sort(
        part(image, filename="../../etc/passwd"),
        part(b"text", filename="C:\\evil\\\u202egnp.exe", content_type="text/plain"),
        part(png_claiming(60000, 60000), filename="a\r\nb\x00.png"),
    )

    assert [s.filename for s in result.screenshots] == ["passwd"]
    assert [a.filename for a in result.attachments] == ["gnp.exe"]
    assert [r.filename for r in result.rejected] == ["a b.png"]


def test_no_warning_escapes_and_each_part_lands_once() -> None:
    # pytest turns warnings into errors here: a bomb between Pillow's warning and error
    # thresholds must still come back as a refusal, not as an exception.
    parts = [
        part(png_claiming(10000, 10000)),
        part(encode(picture(), "JPEG")),
        part(b"plain", content_type="text/plain"),
        part(encode(Image.new("L", (1, 1)), "PNG")),
    ]

    result = sort(*parts)

    assert (len(result.rejected), len(result.screenshots), len(result.attachments), len(result.ignored)) == (
        1,
        1,
        1,
        1,
    )


# --- the real-world corpus --------------------------------------------------------------------


def _corpus_parts(path: Path) -> Iterator[ParsedAttachment]:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for leaf in message.walk():
        if leaf.is_multipart():
            continue
        content_type = leaf.get_content_type()
        content_id = leaf.get("Content-ID")
        filename = leaf.get_filename()
        if not (content_type.startswith("image/") or content_id or filename):
            continue
        payload = leaf.get_payload(decode=True)
        yield ParsedAttachment(
            filename=filename,
            content_type=content_type,
            payload=payload if isinstance(payload, bytes) else b"",
            content_id=str(content_id) if content_id else None,
            inline=leaf.get_content_disposition() == "inline",
        )


def test_corpus_inline_and_image_parts_sort_without_error(corpus_dir: Path) -> None:
    mails = sorted(path for path in corpus_dir.rglob("*.eml") if b"content-id" in path.read_bytes().lower())
    assert len(mails) >= 5, "the corpus should hold mails with inline (Content-ID) parts"
    image_mails = sorted(
        path for path in corpus_dir.rglob("*.eml") if b"content-type: image/" in path.read_bytes().lower()
    )
    outcomes: dict[str, SortedAttachments] = {}
    for path in sorted({*mails, *image_mails}):
        parts = list(_corpus_parts(path))
        result = sort_attachments(parts, limits=ImageLimits())
        buckets = (result.screenshots, result.attachments, result.rejected, result.ignored)
        assert sum(len(bucket) for bucket in buckets) == len(parts), path
        for shot in result.screenshots:
            assert png_chunk_types(shot.png) == [b"IHDR", b"IDAT", b"IEND"], path
        outcomes[path.name] = result

    # What these real mails carry: a cut-off PNG, two small inline/signature pictures, and a
    # text body declared image/jpg.
    nested = outcomes["raw_email_with_nested_attachment.eml"]
    assert [(r.filename, r.reason.split(":")[0]) for r in nested.rejected] == [
        ("truncated.png", "not a readable image")
    ]
    assert outcomes["attachment_message_rfc822_inline_image.eml"].ignored == (
        "img.png: tiny image or tracking pixel 42x32 (both sides under 64 px)",
    )
    assert outcomes["attachment_with_quoted_filename.eml"].ignored == (
        "Eelanalüüsi päring.jpg: tiny image or tracking pixel 50x50 (both sides under 64 px)",
    )
    (not_a_picture,) = outcomes["missing_content_disposition.eml"].attachments
    assert not_a_picture.content_type == "text/plain"
