"""Header lines over RFC 5322's 998 characters are folded at white space, changing nothing they say."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gateway.mail.parse import parse_mail
from gateway.mail.rawmail import MAX_LINE, fold_long_line

_FOLD = re.compile(rb"\r?\n(?=[ \t])")


@given(
    st.lists(
        st.binary(min_size=0, max_size=300).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
        max_size=40,
    ),
    st.sampled_from([b"\n", b"\r\n", b""]),
)
def test_unfolding_gives_the_line_back_and_lines_fit_where_space_allows(
    words: list[bytes], ending: bytes
) -> None:
    line = b"Subject: " + b" ".join(words) + ending
    folded = fold_long_line(line)
    assert _FOLD.sub(b"", folded) == line
    for piece in folded.splitlines():
        if len(piece) > MAX_LINE:
            # Only a run with no white space to fold at may stay longer.
            assert b" " not in piece[1:MAX_LINE] and b"\t" not in piece[1:MAX_LINE]


def test_a_long_subject_of_encoded_words_reads_the_same_folded() -> None:
    words = b"=?utf-8?b?w6k=?= " * 3000 + b"done"
    raw = b"From: maria@customer.example\nSubject: " + words + b"\n\nbody\n"
    assert parse_mail(raw).subject == "é" * 3000 + " done"
