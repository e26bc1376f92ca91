"""A notification's quoted-printable body is made by gateway.notify.message._quoted_printable, not by
the email package's encoder: the text must be exactly what the email package gives for it."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.notify.message import _UTF8_QP, _quoted_printable

# Text as templates produce it, and what is hard for the encoder: long lines whose 75th character
# falls in an escape, white space at line ends, every kind of line break, all 256 Latin-1 characters.
_PIECE = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=30),
    st.sampled_from(["\n", "\r\n", "\r", " ", "\t", "=", "é", "“", "x" * 73, "x" * 74, "x" * 75, "=" * 30]),
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECE, max_size=25).map("".join))
@example("")
@example("x" * 74 + " ")
@example("x" * 75 + "\t\n")
@example("x" * 73 + "é")
def test_the_body_is_the_email_packages(text: str) -> None:
    assert _quoted_printable(text) == (_UTF8_QP.body_encode(text) or "")
