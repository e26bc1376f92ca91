"""Quote-header field patterns are tried only on lines with a colon (gateway.mail.quote_headers._has_colon):
whatever a field pattern matches holds one, so the test never hides a field."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail import quote_headers


@pytest.mark.parametrize("pattern", ["_FIELD", "_ANY_DATED_FIELD"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_field_match_holds_a_colon(pattern: str, data: st.DataObject) -> None:
    regex: re.Pattern[str] = getattr(quote_headers, pattern)
    line = data.draw(st.from_regex(regex, fullmatch=True))
    assert regex.match(line)
    assert quote_headers._has_colon(line)


def test_field_lines_are_still_found() -> None:
    assert quote_headers.is_field_line("From: Jan <jan@example.org>")
    assert quote_headers.is_field_line("**Betreff：** Rechnung")
    assert quote_headers.is_field_line("Message du : 12/12/2016 13:20")
    assert not quote_headers.is_field_line("From Jan, with thanks")


_ENDINGS = st.sampled_from(
    [":", "：", ">", "--", "-", "---", "wrote", "WROTE", "Wrote", "wrOte", "wrote:", "rote", "w", " ", "\t",
     "\n", "\u00a0", "\u2028", "\u3000", "\x1c", "\x85", "\u200b", "\ufeff", "x", "İ", "ı", "K", "ſ", "é"]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(_ENDINGS, st.text(max_size=4)), max_size=10).map("".join))
def test_may_end_header_is_the_search(line: str) -> None:
    assert quote_headers.may_end_header(line) == bool(quote_headers._HEADER_END.search(line))
