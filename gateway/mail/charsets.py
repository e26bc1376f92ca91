"""Text from bytes in whatever charset a mail claims: unknown, absent and lying labels survive."""

from __future__ import annotations

import codecs
import re

from gateway.mail.rawmail import short_defect

# Labels that name no charset, or a charset under a name Python does not know, or one that real
# mail uses for a superset (WHATWG's rules: ISO-8859-1 and ASCII labels mean windows-1252).
_CHARSET_ALIASES = {
    "x-unknown": None,
    "unknown": None,
    "unknown-8bit": None,
    "x-user-defined": None,
    "default": None,
    "8bit": None,
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "x-mac-roman": "mac_roman",
    "utf8": "utf-8",
}
# Codecs with multi-byte or shifted sequences: their label is trusted when the bytes decode in it.
# Any other label names a single-byte charset, which decodes nearly any bytes, real UTF-8 too.
_MULTIBYTE_CODECS = frozenset(
    {
        "utf-8",
        "utf-7",
        "hz",
        "shift_jis",
        "shift_jis_2004",
        "shift_jisx0213",
        "cp932",
        "euc_jp",
        "euc_jis_2004",
        "euc_jisx0213",
        "gb2312",
        "gbk",
        "gb18030",
        "big5",
        "big5hkscs",
        "cp950",
        "euc_kr",
        "cp949",
        "johab",
    }
)
_MULTIBYTE_PREFIXES = ("iso2022", "utf-16", "utf-32")
# Text in these may hold ASCII bytes that are not ASCII text (escape sequences, UTF-16 halves).
_NOT_ASCII_COMPATIBLE_PREFIXES = ("iso2022", "utf-7", "hz", "utf-16", "utf-32")
_WESTERN = frozenset({"cp1252", "iso8859-1"})
_CHARSET_NAME = re.compile(r"[a-z0-9][a-z0-9._:+-]{0,39}")
_SURROGATE_ESCAPES = re.compile(r"[\udc80-\udcff]")
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")
# Control characters that mean nothing in text and that PostgreSQL refuses (NUL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def codec_for(label: str | None) -> str | None:
    """Python codec name for a MIME charset label, or None when unknown or absent."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _CHARSET_ALIASES:
        name = _CHARSET_ALIASES[name] or ""
    if not _CHARSET_NAME.fullmatch(name):
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # bz2, zlib, base64, rot13 ... are codecs but not charsets: a label naming one is unknown.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _windows_1252(data: bytes) -> str:
    # The five bytes cp1252 leaves undefined are read as Latin-1, so this never fails.
    text = data.decode("cp1252", "surrogateescape")
    return _SURROGATE_ESCAPES.sub(lambda m: chr(ord(m.group()) - 0xDC00), text)


def _has_utf8_sequence(data: bytes) -> bool:
    return any(ord(char) > 0x7F for char in data.decode("utf-8", "ignore"))


def _is_multibyte(codec: str) -> bool:
    return codec in _MULTIBYTE_CODECS or codec.startswith(_MULTIBYTE_PREFIXES)


def decode_bytes(data: bytes, charset: str | None, defects: list[str]) -> str:
    """Text of ``data`` in its declared charset, surviving unknown, absent and lying labels.

    A multi-byte label is trusted when the bytes decode in it. Otherwise non-ASCII bytes that are
    valid UTF-8 are UTF-8 whatever the label says (text in a single-byte charset is practically
    never valid UTF-8), then the label's own charset, and without a usable label windows-1252.
    """
    codec = codec_for(charset)
    if charset and codec is None:
        defects.append(short_defect(f"unknown charset {charset!r}"))
    if data.isascii() and not (codec and codec.startswith(_NOT_ASCII_COMPATIBLE_PREFIXES)):
        return data.decode("ascii")
    if codec is not None and _is_multibyte(codec):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if codec not in (None, "utf-8"):
            defects.append(short_defect(f"text labelled {charset!r} is UTF-8"))
        return text
    if codec == "utf-8":
        if _has_utf8_sequence(data):
            # Real UTF-8 with some damage: keep the good characters.
            defects.append("invalid UTF-8 bytes replaced")
            return data.decode("utf-8", "replace")
        defects.append("text labelled UTF-8 is in a legacy charset; read as windows-1252")
        return _windows_1252(data)
    if codec is None or codec in _WESTERN:
        return _windows_1252(data)
    if not _is_multibyte(codec):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass  # a single-byte charset with a few undefined positions (cp1251's 0x98, say)
    defects.append(short_defect(f"bytes not valid in {charset!r} replaced"))
    return data.decode(codec, "replace")


def reads_ascii_as_ascii(charset: str | None) -> bool:
    """Whether `decode_bytes` reads ASCII bytes labelled `charset` as the same ASCII text, and notes
    nothing: no label or a known one whose ASCII bytes are ASCII text (not ISO-2022's escapes,
    UTF-7, HZ, UTF-16 or UTF-32)."""
    if not charset:
        return True
    codec = codec_for(charset)
    return codec is not None and not codec.startswith(_NOT_ASCII_COMPATIBLE_PREFIXES)


def clean_text(text: str) -> str:
    return _CONTROL.sub("", _LONE_SURROGATES.sub("\ufffd", text))
