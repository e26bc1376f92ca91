"""Plain header values (one line of ASCII, no encoded word) are decoded without `_decode_header` when
the mail's charset reads ASCII as ASCII (gateway/mail/parse.py `_headers`): the text and the defects
must be what `_decode_header` gives, and header names what the round trip through bytes gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail import parse
from gateway.mail.charsets import clean_text, reads_ascii_as_ascii

_CHARSETS = st.sampled_from(
    [None, "", "utf-8", "UTF-8", "us-ascii", "iso-8859-1", "windows-1252", "koi8-r", "big5", "gb2312",
     "shift_jis", "euc-kr", "iso-2022-jp", "utf-7", "hz", "utf-16", "x-unknown", "no-such-charset", "base64"]
)  # fmt: skip
_VALUES = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40),
    st.text(max_size=20),
    st.sampled_from(
        [" Re: hello ", "\x1b$B$3$s\x1b(B", "+AGE-", "~{<:~}", "a\x00b\x7f", "=?utf-8?q?x?=", "x\r\n y"]
    ),
)


@settings(max_examples=1000, deadline=None)
@given(value=_VALUES, charset=_CHARSETS)
def test_a_plain_value_reads_as_decode_header_reads_it(value: str, charset: str | None) -> None:
    if not (reads_ascii_as_ascii(charset) and parse._is_plain(value)):
        return
    defects: list[str] = []
    assert clean_text(value).strip() == parse._decode_header(value, defects, charset)
    assert defects == []


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=20))
def test_header_names_read_as_the_round_trip_reads_them(name: str) -> None:
    long_way = clean_text(parse._raw_bytes(name).decode("utf-8", "replace")).strip().lower()
    assert parse._header_name(name) == long_way


def test_escapes_and_shifts_are_not_plain_ascii() -> None:
    # ISO-2022-JP text is all 7-bit bytes: it must still be decoded in its charset.
    assert not reads_ascii_as_ascii("iso-2022-jp")
    assert not reads_ascii_as_ascii("utf-7")
    assert not reads_ascii_as_ascii("no-such-charset")  # decode_bytes notes the unknown label
    assert reads_ascii_as_ascii(None) and reads_ascii_as_ascii("utf-8") and reads_ascii_as_ascii("big5")
