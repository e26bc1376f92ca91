"""The subject's RFC 2047 decoding skips the email package's header parser where that parser would
give the text back unchanged (no encoded word, no lone surrogate): the answers must not differ."""

from __future__ import annotations

from collections.abc import Callable
from email.policy import default

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.mail import subject


def _through_the_parser(text: str) -> str:
    """`_decode` as it was: every subject through the stdlib's unstructured header parser."""
    unfolded = subject._LINE_BREAK_BEFORE_WSP.sub("", text).replace("\r", " ").replace("\n", " ")
    return str(default.header_factory("subject", unfolded))


_PIECES = st.sampled_from(
    ["=?", "?=", "=?utf-8?q?caf=C3=A9?=", "=?iso-8859-1?b?Y2Fm6Q==?=", " ", "\t", "\r\n ", "\n", "\r",
     "Re:", "é", "\udce9", "\ud800", "\x00", "\u2028", "a", "[SP-4]", "(x)", '"q"']
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=12).map("".join))
@example("plain title")
@example("caf\udce9")
@example("x =?utf-8?q?y?= z")
def test_decoding_gives_what_the_parser_gives(text: str) -> None:
    assert _outcome(subject._decode, text) == _outcome(_through_the_parser, text)


def _outcome(decode: Callable[[str], str], text: str) -> str | type[Exception]:
    """The text, or the exception's type (the parser raises on a surrogate outside U+DC80-U+DCFF)."""
    try:
        return decode(text)
    except UnicodeError as error:
        return type(error)
