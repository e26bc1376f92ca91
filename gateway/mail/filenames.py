"""Make an attachment's file name safe to show, store and offer for download.

A name from a mail is sender-controlled text: it may carry a path, control characters that
break log lines or headers, bidi overrides that disguise the extension (``gnp.exe`` shown as
``exe.png``), or run to thousands of characters. What comes out is a single plain name.
"""

from __future__ import annotations

import unicodedata

# Characters Windows refuses in file names; a staff member saving the file there must not fail.
_RESERVED = frozenset('<>:"|?*')
# An extension longer than this is not an extension worth keeping whole when capping the length.
_MAX_EXTENSION = 16


def sanitize_filename(name: str | None, *, fallback: str, max_length: int = 120) -> str:
    """One safe file name: basename only, no control or format characters, no leading dots, NFC,
    at most ``max_length`` characters (the extension kept). ``fallback`` when nothing is left."""
    if max_length < 1:
        raise ValueError(f"max_length must be positive, not {max_length}")
    if not name:
        return fallback
    text = unicodedata.normalize("NFC", name)
    # Both separators: a name from a Windows client may use backslashes, and every consumer
    # (browser, unzip, a staff member's disk) treats one or the other as a path.
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(_clean_char(char) for char in text)
    text = " ".join(text.split())
    # Leading dots make hidden files and "..", trailing dots and spaces vanish on Windows.
    text = text.lstrip(". ").rstrip(". ")
    if not text:
        return fallback
    return _cap_length(text, max_length)


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if char in "\t\r\n\v\f" or category in ("Zl", "Zp"):
        # Line breaks become spaces so the words they separated stay apart.
        return " "
    if category in ("Cc", "Cf", "Cs", "Co", "Cn"):
        # Controls, format characters (bidi overrides, zero-width), surrogates, private use
        # and unassigned code points: none belongs in a name a person reads.
        return ""
    if char in _RESERVED:
        return "_"
    return char


def _cap_length(text: str, max_length: int) -> str:
    if len(text) <= max_length:
        return text
    stem, dot, extension = text.rpartition(".")
    if dot and stem and len(extension) <= _MAX_EXTENSION and len(extension) + 2 <= max_length:
        keep = max_length - len(extension) - 1
        return f"{stem[:keep].rstrip(' .')}.{extension}"
    return text[:max_length].rstrip(" .")
