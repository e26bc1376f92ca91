"""The charset of a mail's raw 8-bit header bytes: the one it declares, else a detected one (SPEC §1).

Senders that put raw bytes in headers (GB2312, Shift_JIS, EUC-KR, Windows-1251, KOI8-R without
RFC 2047) write them in the charset of their text, so the charset the mail declares for its top
part or first text part is trusted first. Where it declares none, declares only ASCII, or declares
one the bytes are not valid in, the bytes are measured: valid UTF-8 is UTF-8, anything else goes to
chardet, with every raw header value and any undeclared text together as its sample, since a
longer sample detects better. Blind Latin-1 is what is left only when detection has nothing.

chardet, not charset-normalizer: on header-sized text (bench/charset_detection.py) chardet 7 read
back 49 of 52 texts in 22 charsets, charset-normalizer 18 (it takes short GB2312 for Korean and
KOI8-R for Japanese). docs/performance/mail-reading.md has the figures.
"""

from __future__ import annotations

import re
from email.message import Message

from gateway.mail.charsets import codec_for, decode_bytes

# Labels that declare nothing about 8-bit bytes (codec_for reads ASCII labels as windows-1252).
_ASCII_LABELS = frozenset({"us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", "iso646-us"})
# Charsets in which Latin-1 letters, as bytes again, can spell text: the ones misread on the way.
_CJK_CODECS = frozenset(
    {
        "gb18030",
        "gbk",
        "gb2312",
        "big5",
        "big5hkscs",
        "cp950",
        "cp932",
        "shift_jis",
        "euc_jp",
        "cp949",
        "euc_kr",
    }
)
_SAMPLE_LIMIT = 8192
_WORD = re.compile(rb"[^\s\"'=;:,<>()]+")
_LATIN1_SUPPLEMENT = re.compile("[\u0080-\u00ff]")
_ABOVE_LATIN1 = re.compile("[^\u0000-\u00ff]")


def raw_bytes(value: object) -> bytes:
    """The octets of a header value as the email package holds them (8-bit bytes as surrogates)."""
    return str(value).encode("utf-8", "surrogateescape")


def declared_charset(message: Message) -> str | None:
    """The charset the mail declares for its text: the top part's, else the first text part's."""
    for part in [message, *message.walk()]:
        if part is not message and part.get_content_maintype() != "text":
            continue
        try:
            charset = part.get_content_charset()
        except (ValueError, LookupError, UnicodeError):
            continue  # an RFC 2231 charset parameter whose own charset is garbage
        if charset:
            return charset
    return None


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def _ascii_compatible(codec: str | None) -> bool:
    """Whether ASCII bytes are ASCII text in `codec`: header structure is ASCII, so only such a
    charset can be the one of raw header bytes (not UTF-16, UTF-7, ISO-2022 or EBCDIC)."""
    if codec is None:
        return False
    try:
        return _PRINTABLE_ASCII.decode(codec) == _PRINTABLE_ASCII.decode("ascii")
    except (UnicodeError, LookupError):
        return False


def _fits(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _undeclared_text(message: Message) -> bytes:
    """Text parts that declare no charset: the same sender wrote them in the same charset."""
    found = b""
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.get_param("charset") is not None:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and not payload.isascii():
            found += b"\n" + payload[:_SAMPLE_LIMIT]
        if len(found) >= _SAMPLE_LIMIT:
            break
    return found


def _raw_header_sample(message: Message) -> bytes:
    """Every raw 8-bit header value: the mail's own, and the parts' Content-Type and -Disposition
    (where attachment file names are)."""
    values = [raw_bytes(value) for _, value in message.raw_items()]
    for part in message.walk():
        if part is not message:
            values += [
                raw_bytes(value)
                for name, value in part.raw_items()
                if name.lower() in ("content-type", "content-disposition")
            ]
    return b"\n".join(value for value in values if not value.isascii())


def _words(sample: bytes) -> bytes:
    """Only the words with 8-bit bytes: the ASCII around them (parameter names, addresses) would make
    a detector read the few letters that matter as Western text. The separators are all below 0x40,
    so no trail byte of a multi-byte charset (Shift_JIS, Big5, GBK: 0x40 and up) is split off."""
    return b" ".join(word for word in _WORD.findall(sample) if not word.isascii())


def detect(data: bytes) -> str | None:
    """The codec chardet reads ``data`` in, when the bytes decode in it; None otherwise."""
    import chardet  # imported here: only mail with undeclared 8-bit headers needs it (44 ms to load)

    # Not chardet's prefer_superset: it turns ISO-8859-2 into windows-1250, which differs from it in
    # 0xA0-0xBF ("ą" becomes "±"). codec_for maps the true supersets (Latin-1, EUC-KR, GB2312...).
    found = chardet.detect(data[:_SAMPLE_LIMIT], prefer_superset=False).get("encoding")
    codec = codec_for(found)
    return codec if _ascii_compatible(codec) and codec is not None and _fits(data, codec) else None


def header_charset(message: Message, defects: list[str]) -> str | None:
    """The charset for this mail's raw 8-bit header bytes (and undeclared text), or None for no opinion."""
    try:
        return _header_charset(message, defects)
    except RecursionError:  # a hostile MIME tree too deep to walk: the parser reports it elsewhere
        defects.append("MIME tree too deep to look for a charset; raw 8-bit headers read as UTF-8 or cp1252")
        return None


def _header_charset(message: Message, defects: list[str]) -> str | None:
    declared = declared_charset(message)
    if declared is not None and declared.strip().strip("\"'").lower() in _ASCII_LABELS:
        declared = None
    if declared is not None and not _ascii_compatible(codec_for(declared)):
        declared = None  # a UTF-16 body says nothing about the (ASCII-structured) headers
    codec = codec_for(declared)
    sample = _raw_header_sample(message)
    if not sample:
        return declared
    if codec is not None and _fits(sample, codec):
        return declared
    if _fits(sample, "utf-8"):
        # Under a multi-byte declaration UTF-8 is still read as UTF-8 (decode_bytes prefers it), and
        # decode_raw_header can still undo a relay's Latin-1 misreading, for which it needs the label.
        return declared if codec in _CJK_CODECS else "utf-8"
    detected = detect(_words(sample) + _undeclared_text(message))
    if detected is None:
        defects.append("raw 8-bit header bytes in no charset we could tell; read as windows-1252")
        return declared
    if codec is not None:
        defects.append(f"raw 8-bit header bytes not valid in the declared {declared!r}; read as {detected}")
    else:
        defects.append(f"raw 8-bit header bytes without a declared charset; read as {detected}")
    return detected


def text_charset(label: str | None, payload: bytes, mail_charset: str | None) -> str | None:
    """The charset to read a text part in: its own label, unless that declares nothing (absent,
    ASCII) or the bytes are not valid in it, when the charset found for the mail's headers fits."""
    if payload.isascii() or mail_charset is None:
        return label
    if label is None or label.strip().strip("\"'").lower() in _ASCII_LABELS:
        return mail_charset
    codec, fallback = codec_for(label), codec_for(mail_charset)
    if codec is not None and not _fits(payload, codec) and fallback is not None and _fits(payload, fallback):
        return mail_charset
    return label


def decode_raw_header(data: bytes, charset: str | None, defects: list[str]) -> str:
    """Raw header bytes as text, undoing one earlier misreading as Latin-1 where the declaration proves it.

    Some relays read a Big5 or GB2312 header as Latin-1 and wrote it out again as UTF-8, so the bytes
    are valid UTF-8 made only of Latin-1 letters ("¤j¸É"). When the mail declares a multi-byte
    charset and those letters, as Latin-1 bytes again, are valid in it, that is the text.
    """
    text = decode_bytes(data, charset, defects)
    codec = codec_for(charset)
    if codec not in _CJK_CODECS or _ABOVE_LATIN1.search(text):
        return text
    letters = [char for char in text if char.isalpha() or _LATIN1_SUPPLEMENT.match(char)]
    high = [char for char in letters if _LATIN1_SUPPLEMENT.match(char)]
    if len(high) < 2 or len(high) * 2 < len(letters):
        return text
    try:
        repaired = text.encode("latin-1").decode(codec)
    except UnicodeError:
        return text
    if repaired.isascii() or _LATIN1_SUPPLEMENT.search(repaired):
        return text
    defects.append(f"header text was {charset!r} read as Latin-1 on its way; read again")
    return repaired
