"""A PNG that needs no re-encoding: its own pixel data, kept as it came, in a file of our making.

Most screenshots arrive as PNGs already: 8-bit RGB or RGBA, sRGB, upright. Normalising one
(screenshots.py) decodes it and compresses the same pixels again, and the compression (zlib at
Pillow's default level) was ~14 % of the instructions a plain mail with one screenshot cost.

A PNG is *clean* when decoding and re-encoding it could only give the same pixels back:

- the signature, then chunks whose CRCs hold, IHDR first, IEND last, nothing after IEND;
- IHDR: 8 bits per sample, colour type 2 (RGB) or 6 (RGBA), standard compression and filter,
  not interlaced (an interlaced file would be stored interlaced: larger, and not what we write);
- no chunk that changes the pixels normalising would produce: no iCCP (a profile is applied),
  no tRNS (transparency turns RGB into RGBA), no PLTE-dependent colour type, no animation
  (acTL, fcTL, fdAT: only the first frame is kept), no unknown critical chunk, and no EXIF
  orientation other than upright (checked by the caller on the decoded image, which reads EXIF
  from eXIf and from ImageMagick's text chunk alike);
- the IDAT data is one zlib stream that inflates to exactly the rows IHDR announces and
  nothing is left after its end (no bytes hidden behind the picture).

Everything else (text, XMP, EXIF, time, DPI, gamma, chromaticities, sRGB intent, background,
significant bits, private chunks) is metadata: the file kept is the signature, IHDR, the IDAT
chunks as they came, and IEND, so none of it is stored. gAMA and cHRM are dropped unapplied, as
normalising drops them (Pillow applies neither). Size and pixel limits are the caller's, checked
before this. An RGBA picture whose alpha is opaque everywhere is not clean either: normalising
makes it RGB (the caller checks, on the decoded image).
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Chunks whose presence means the decoded pixels would differ from the stored ones.
_CHANGES_PIXELS = frozenset({b"iCCP", b"tRNS", b"acTL", b"fcTL", b"fdAT", b"PLTE"})
_BYTES_PER_PIXEL = {2: 3, 6: 4}  # colour type -> bytes per pixel at 8 bits per sample


def clean_png(payload: bytes) -> bytes | None:
    """`payload` as a clean PNG (signature, IHDR, its IDAT chunks, IEND), or None when it is not
    one and must be normalised. Never raises on damaged input: damage means None."""
    try:
        return _clean(payload)
    except (struct.error, zlib.error, ValueError):
        return None


def _clean(payload: bytes) -> bytes | None:
    if not payload.startswith(PNG_SIGNATURE):
        return None
    kept: list[bytes] = []
    idat: list[bytes] = []
    header: tuple[int, ...] | None = None
    previous = b""
    position = len(PNG_SIGNATURE)
    while position < len(payload):
        (length,) = struct.unpack_from(">I", payload, position)
        kind = payload[position + 4 : position + 8]
        end = position + 12 + length
        if length > 0x7FFFFFFF or end > len(payload):
            return None
        data = payload[position + 8 : position + 8 + length]
        (crc,) = struct.unpack_from(">I", payload, end - 4)
        if zlib.crc32(kind + data) != crc:
            return None
        chunk, previous_kind, previous = payload[position:end], previous, kind
        position = end
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            header = struct.unpack(">IIBBBBB", data)
            kept.append(chunk)
        elif kind == b"IDAT":
            if idat and previous_kind != b"IDAT":
                return None  # IDAT chunks must be consecutive
            idat.append(data)
            kept.append(chunk)
        elif kind == b"IEND":
            if position != len(payload) or length != 0:
                return None  # bytes after the end of the picture
            kept.append(chunk)
            return b"".join([PNG_SIGNATURE, *kept]) if _pixels_fit(header, idat) else None
        elif kind in _CHANGES_PIXELS or kind[0:1].isupper():
            return None  # changes the pixels, or a critical chunk we do not know
        # Anything else is metadata: not kept.
    return None  # no IEND: truncated


def _pixels_fit(header: tuple[int, ...] | None, idat: list[bytes]) -> bool:
    """IHDR is one we write, and the IDAT stream inflates to exactly its rows, nothing after."""
    if header is None or not idat:
        return False
    width, height, depth, colour, compression, filtering, interlace = header
    if depth != 8 or colour not in _BYTES_PER_PIXEL or (compression, filtering, interlace) != (0, 0, 0):
        return False
    if width < 1 or height < 1:
        return False
    expected = height * (1 + width * _BYTES_PER_PIXEL[colour])
    inflater = zlib.decompressobj()
    pixels = inflater.decompress(b"".join(idat), expected + 1)
    return (
        len(pixels) == expected and inflater.eof and not inflater.unused_data and not inflater.unconsumed_tail
    )
