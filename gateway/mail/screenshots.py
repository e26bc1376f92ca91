"""Sort a mail's attachments into screenshots, plain attachments, refused and ignored parts.

A part is an image when its bytes decode as one, whatever its declared type or name says.
Images are decoded under limits, turned upright, stripped of every metadata block (EXIF with
GPS positions, XMP, comments, text chunks) and re-encoded as PNG, with a thumbnail; tiny
images, tracking pixels and known logos are left out. Pure: no I/O, storing is the caller's.

Colour profiles: an embedded ICC profile is applied (pixels converted to sRGB) and then dropped,
so colours stay right without carrying the profile's text (device and vendor names) along, and
the same picture gives the same PNG bytes whichever profile it came with.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import struct
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import pillow_heif
from PIL import Image, ImageCms, ImageFile, ImageOps

from gateway.domain import ParsedAttachment, PlainAttachment, RejectedImage, Screenshot, SortedAttachments
from gateway.mail.clean_png import clean_png
from gateway.mail.filenames import sanitize_filename

logger = logging.getLogger(__name__)

# Idempotent: adds the HEIF/HEIC plugin to Pillow's registry of formats.
pillow_heif.register_heif_opener()

THUMBNAIL_SIZE = (320, 320)

# The formats SPEC §6 names, as Pillow calls them. Pillow knows many more (TGA, ICO, PSD ...);
# those stay plain attachments rather than widening the decoders that see hostile input.
_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "HEIF")
# Pillow opens multi-picture JPEGs (phone cameras) as "MPO": to the user they are JPEGs.
_FORMAT_NAMES = {"MPO": "JPEG"}

# Unambiguous signatures. BMP's "BM" and HEIF's generic "mif1" brand are too weak to trust
# alone (a text file may start with "BM"), so those are left to Pillow's fuller header checks.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})

# How Pillow and its decoders report bytes that are not a valid image of the claimed kind.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    Image.DecompressionBombError,
)

# Magic numbers of common non-image attachments, so their type comes from the bytes too.
_PLAIN_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)
# For naming a part that came without a name (mimetypes would read the machine's own tables).
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "application/json": ".json",
}
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


@dataclass(frozen=True)
class ImageLimits:
    """How much a mail's attachments may ask of us."""

    max_bytes: int = 10 * 1024 * 1024  # one image file
    max_pixels: int = 40_000_000  # one image, width x height
    min_side: int = 64  # an image with both sides under this is a tiny image or tracking pixel
    max_attachments: int = 20  # screenshots plus plain attachments kept per mail
    max_attachment_bytes: int = 25 * 1024 * 1024  # one non-image attachment


class _Refused(Exception):
    """An image that cannot become a screenshot; the message says why, for people."""


def sniff_image(payload: bytes) -> str | None:
    """The image format of ``payload`` judged by its bytes alone ("PNG", "JPEG", ...), or None.

    A recognised format does not promise the image decodes: that is ``sort_attachments``' job.
    """
    for signature, name in _SIGNATURES:
        if payload.startswith(signature):
            return name
    if payload[:4] == b"RIFF" and payload[8:12] == b"WEBP":
        return "WEBP"
    if payload[4:8] == b"ftyp" and payload[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return _sniff_with_pillow(payload)


def _sniff_with_pillow(payload: bytes) -> str | None:
    # One format at a time, so that an image refused as a bomb at open still tells its format.
    for name in _FORMATS:
        try:
            with _pillow_warnings_logged(), Image.open(io.BytesIO(payload), formats=[name]) as image:
                return _FORMAT_NAMES.get(image.format or name, image.format or name)
        except Image.DecompressionBombError:
            return name
        except _DECODE_ERRORS:
            continue
    return None


def sort_attachments(
    parts: Sequence[ParsedAttachment],
    *,
    limits: ImageLimits,
    known_logo_hashes: frozenset[str] = frozenset(),
) -> SortedAttachments:
    """Sort ``parts`` (attachments and inline ``cid:`` parts alike), in order.

    ``known_logo_hashes`` holds SHA-256 hex digests of pictures to leave out (a logo that repeats
    across a sender's mails): of the normalised PNG (``Screenshot.sha256``) or of the raw bytes.
    At most ``limits.max_attachments`` parts are kept; ignored parts do not count toward that.
    """
    sorter = _Sorter(limits, known_logo_hashes)
    for position, part in enumerate(parts, start=1):
        sorter.add(position, part)
    return SortedAttachments(
        screenshots=tuple(sorter.screenshots),
        attachments=tuple(sorter.attachments),
        rejected=tuple(sorter.rejected),
        ignored=tuple(sorter.ignored),
    )


class _Sorter:
    """The running state of one ``sort_attachments`` call."""

    def __init__(self, limits: ImageLimits, known_logo_hashes: frozenset[str]) -> None:
        self.limits = limits
        self.known_logo_hashes = known_logo_hashes
        self.screenshots: list[Screenshot] = []
        self.attachments: list[PlainAttachment] = []
        self.rejected: list[RejectedImage] = []
        self.ignored: list[str] = []
        # sha256 of the kept PNG, and digest of the pixels -> name of the first screenshot: a clean
        # PNG is kept as it came (clean_png.py), so the same picture may come as other PNG bytes.
        self.seen: dict[str, str] = {}

    @property
    def full(self) -> bool:
        return len(self.screenshots) + len(self.attachments) >= self.limits.max_attachments

    def refuse_over_count(self, filename: str) -> None:
        self.rejected.append(
            RejectedImage(
                filename,
                f"too many attachments: only the first {self.limits.max_attachments} are kept",
            )
        )

    def add(self, position: int, part: ParsedAttachment) -> None:
        source_format = sniff_image(part.payload)
        if source_format is None:
            self.add_plain(position, part)
        else:
            self.add_image(part, source_format)

    def add_plain(self, position: int, part: ParsedAttachment) -> None:
        content_type = _plain_content_type(part.content_type, part.payload)
        extension = _EXTENSIONS.get(content_type, "")
        filename = sanitize_filename(part.filename, fallback=f"attachment-{position}{extension}")
        size, limit = len(part.payload), self.limits.max_attachment_bytes
        if size > limit:
            self.rejected.append(
                RejectedImage(filename, f"attachment too large: {size} bytes exceeds {limit}")
            )
        elif self.full:
            self.refuse_over_count(filename)
        else:
            self.attachments.append(PlainAttachment(filename, content_type, part.payload))

    def add_image(self, part: ParsedAttachment, source_format: str) -> None:
        fallback = f"screenshot-{len(self.screenshots) + 1}.png"
        filename = sanitize_filename(part.filename, fallback=fallback)
        size, limit = len(part.payload), self.limits.max_bytes
        if size > limit:
            self.rejected.append(
                RejectedImage(filename, f"image file too large: {size} bytes exceeds {limit}")
            )
            return
        if hashlib.sha256(part.payload).hexdigest() in self.known_logo_hashes:
            self.ignored.append(f"{filename}: known logo")
            return
        try:
            with _pillow_warnings_logged(), _open_image(part.payload, self.limits) as image:
                width, height = image.size
                if width < self.limits.min_side and height < self.limits.min_side:
                    self.ignored.append(
                        f"{filename}: tiny image or tracking pixel {width}x{height} "
                        f"(both sides under {self.limits.min_side} px)"
                    )
                    return
                if self.full:
                    self.refuse_over_count(filename)
                    return
                png, thumbnail, size_out, pixels = _normalise(image, part.payload)
        except _Refused as exc:
            self.rejected.append(RejectedImage(filename, str(exc)))
            return
        sha256 = hashlib.sha256(png).hexdigest()
        if sha256 in self.known_logo_hashes:
            self.ignored.append(f"{filename}: known logo")
        elif sha256 in self.seen or pixels in self.seen:
            self.ignored.append(f"{filename}: same picture as {self.seen.get(sha256) or self.seen[pixels]}")
        else:
            self.seen[sha256] = self.seen[pixels] = filename
            self.screenshots.append(
                Screenshot(
                    sha256=sha256,
                    png=png,
                    thumbnail=thumbnail,
                    width=size_out[0],
                    height=size_out[1],
                    filename=filename,
                    source_format=_FORMAT_NAMES.get(source_format, source_format),
                )
            )


@contextlib.contextmanager
def _pillow_warnings_logged() -> Iterator[None]:
    """Pillow reports decompression bombs and damaged metadata as warnings. Collect them, so a
    run with warnings as errors (pytest) behaves like production, and log them for diagnosis;
    the limits are enforced by explicit checks, not by warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for message in caught:
                logger.debug("while decoding an image: %s", message.message)


def _open_image(payload: bytes, limits: ImageLimits) -> Image.Image:
    """Open ``payload`` (header only) and refuse it when it claims more pixels than allowed."""
    # A truncated image must fail to load, not come out with grey bands; nothing here sets the
    # flag, and a library that did would silently weaken this check.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        image = Image.open(io.BytesIO(payload), formats=_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _Refused(f"image too large: over {limits.max_pixels} pixels ({exc})") from None
    except _DECODE_ERRORS as exc:
        raise _Refused(f"not a readable image: {_describe(exc)}") from None
    width, height = image.size
    if width * height > limits.max_pixels:
        image.close()
        raise _Refused(f"image too large: {width}x{height} pixels exceeds {limits.max_pixels}")
    if width < 1 or height < 1:
        image.close()
        raise _Refused(f"not a readable image: it claims {width}x{height} pixels")
    return image


def _normalise(image: Image.Image, payload: bytes) -> tuple[bytes, bytes, tuple[int, int], str]:
    """Decode the first frame, turn it upright, convert to sRGB RGB/RGBA and encode as PNG; a
    PNG that is clean already (clean_png.py) keeps its own pixel data, without its metadata.

    Returns the PNG, its thumbnail, its size and a digest of its pixels. A picture that fits the
    thumbnail's bounds already is its own thumbnail: the same pixels, so the same bytes (one blob),
    not encoded a second time (the zlib encoding of a small screenshot's copy was ~4 % of processing
    a mail with one; docs/performance/instructions-and-suite.md).
    """
    try:
        # Animated GIF, WebP, APNG, multi-page TIFF: an opened image is on its first frame.
        image.load()  # a truncated or corrupt file fails here
        kept = _clean_as_it_came(image, payload)
        upright = image if kept else ImageOps.exif_transpose(image) or image
        converted = upright if kept else _to_srgb(upright)
    except _DECODE_ERRORS as exc:
        raise _Refused(f"not a readable image: {_describe(exc)}") from None
    # A fresh image from the pixels alone: nothing of the source's info (EXIF, XMP, comments,
    # text chunks, ICC, DPI) can reach the encoder.
    raw = converted.tobytes()
    clean = Image.frombytes(converted.mode, converted.size, raw)
    pixels = hashlib.blake2b(f"{clean.mode} {clean.size}".encode() + raw, digest_size=20).hexdigest()
    png = kept or _png(clean)
    if fits_thumbnail(clean.size):
        return png, png, clean.size, "pixels:" + pixels
    thumb = clean.copy()
    thumb.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    return png, _png(thumb), clean.size, "pixels:" + pixels


def fits_thumbnail(size: tuple[int, int]) -> bool:
    """Whether an image of `size` is within THUMBNAIL_SIZE, so `Image.thumbnail` leaves it as it is
    (it never enlarges)."""
    return size[0] <= THUMBNAIL_SIZE[0] and size[1] <= THUMBNAIL_SIZE[1]


def _clean_as_it_came(image: Image.Image, payload: bytes) -> bytes | None:
    """The PNG to keep without re-encoding it, or None: what normalising would change (mode,
    profile, transparency, orientation, unused alpha) is read from the decoded image, what the
    file holds beside its pixels by `clean_png`."""
    if image.format != "PNG" or image.mode not in ("RGB", "RGBA"):
        return None
    if "icc_profile" in image.info or "transparency" in image.info:
        return None
    if image.getexif().get(_ORIENTATION, 1) != 1:
        return None
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        return None  # normalising makes it RGB
    return clean_png(payload)


_ORIENTATION = 0x0112  # the EXIF tag ImageOps.exif_transpose reads


def _to_srgb(image: Image.Image) -> Image.Image:
    """The pixels as 8-bit sRGB, RGBA only where some pixel is not fully opaque."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = _to_8bit_grey(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    target = "RGBA" if has_alpha else "RGB"
    icc = image.info.get("icc_profile")
    if icc:
        base = image.convert(target) if image.mode in ("P", "PA") else image
        try:
            profiled = ImageCms.profileToProfile(
                base, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(), outputMode=target
            )
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            # A damaged profile, or one that does not fit the pixels (a grey profile): the
            # picture is still good, its colours are taken as they are.
            logger.debug("colour profile not applied: %s", exc)
            profiled = None
        if profiled is not None:
            image = profiled
    converted = image.convert(target) if image.mode != target else image
    if target == "RGBA" and converted.getchannel("A").getextrema() == (255, 255):
        # Transparency declared but unused: the same picture gives the same PNG either way.
        converted = converted.convert("RGB")
    return converted


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey scaled into 0..255 (a plain convert would clip, not scale)."""
    if image.mode.startswith("I;16"):
        scale = 1 / 256
    else:
        high = float(image.getextrema()[1])  # type: ignore[arg-type]  # one band: (low, high)
        scale = 255 / high if high > 255 else 1.0
    source = image.convert("F") if image.mode == "F" else image.convert("I")
    return source.point(lambda value: value * scale).convert("L")


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # Pillow names the in-memory file object in some messages; that says nothing to a person.
    return re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-f]+>", " the data", text)


def _plain_content_type(declared: str, payload: bytes) -> str:
    """The type of a non-image part: from its bytes where they tell, else as declared.

    Never ``image/*``: the bytes were just found not to be an image, and a viewer trusting that
    label would render sender-chosen bytes as a picture.
    """
    for signature, content_type in _PLAIN_SIGNATURES:
        if payload.startswith(signature):
            return content_type
    declared = declared.split(";", 1)[0].strip().lower()
    if _MIME_TYPE.fullmatch(declared) and not declared.startswith("image/"):
        return declared
    if _looks_like_text(payload):
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(payload: bytes) -> bool:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(char < " " and char not in "\t\r\n\f" for char in text)
