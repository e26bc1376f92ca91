"""Attachment file names made safe: one plain name, whatever the sender put there."""

from __future__ import annotations

import unicodedata

import pytest

from gateway.mail.filenames import sanitize_filename


def clean(name: str | None, max_length: int = 120) -> str:
    return sanitize_filename(name, fallback="file-1", max_length=max_length)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("screenshot.png", "screenshot.png"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\evil\\a.png", "a.png"),
        ("..\\..\\windows\\system32\\a.dll", "a.dll"),
        ("dir/sub\\mixed/last.txt", "last.txt"),
        ("report\r\nBcc: victim@example.com.pdf", "report Bcc_ victim@example.com.pdf"),
        ("a\x00b\x07c\x1b[31m.png", "abc[31m.png"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),
        ("zero\u200bwidth\ufeff.png", "zerowidth.png"),
        ("line\u2028break.txt", "line break.txt"),
        (".bashrc", "bashrc"),
        ("...hidden.png", "hidden.png"),
        ("  spaced   out  .png  ", "spaced out .png"),
        ("trailing dots...", "trailing dots"),
        ('what?<is>"this"|*.png', "what__is__this___.png"),
        ("Eelanalüüsi päring.jpg", "Eelanalüüsi päring.jpg"),
        ("スクリーンショット.png", "スクリーンショット.png"),
    ],
)
def test_names_come_out_plain(name: str, expected: str) -> None:
    assert clean(name) == expected


@pytest.mark.parametrize(
    "name", [None, "", "   ", "..", ".", "../", "a/b/", "\x00\r\n", "\u202e", "C:\\dir\\"]
)
def test_nothing_usable_gives_the_fallback(name: str | None) -> None:
    assert clean(name) == "file-1"


def test_result_is_nfc() -> None:
    decomposed = "cafe\u0301.png"  # e + combining acute accent

    result = clean(decomposed)

    assert result == "café.png"
    assert unicodedata.is_normalized("NFC", result)


def test_long_name_is_capped_keeping_its_extension() -> None:
    result = clean("a" * 300 + ".png")

    assert len(result) == 120
    assert result == "a" * 116 + ".png"


def test_long_name_without_usable_extension_is_cut() -> None:
    assert clean("b" * 300) == "b" * 120
    assert clean("c" * 200 + "." + "d" * 40) == ("c" * 200 + "." + "d" * 40)[:120]


def test_cap_counts_characters_after_cleaning() -> None:
    name = "\x00" * 500 + "x" * 10 + ".txt"

    assert clean(name) == "x" * 10 + ".txt"


def test_small_cap() -> None:
    assert clean("abcdef.png", max_length=6) == "ab.png"
    assert clean("abcdef.png", max_length=5) == "a.png"
    assert clean("abcdef.png", max_length=4) == "abcd"
    assert clean("abcdef.png", max_length=3) == "abc"
    assert clean("abcdef.png", max_length=1) == "a"


def test_no_control_or_format_character_survives_any_input() -> None:
    hostile = "".join(chr(code) for code in range(0x0, 0x2100)) + "\u202e\u2066\u2069.png"

    result = clean(hostile, max_length=10_000)

    assert "/" not in result and "\\" not in result
    assert not any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in result)
    assert not result.startswith(".")
    assert result.endswith(".png")


def test_max_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_length"):
        clean("a.png", max_length=0)
