"""The bare-address fallback finds what a regular expression found, in linear time."""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st

from gateway.mail.address_token import first_address_token

# The regular expression the fallback used before: the reference for what counts as a token.
_REFERENCE = re.compile(r"[^\s<>\"'(),;:\[\]@]+@[^\s<>\"'(),;:\[\]]+")


def test_finds_the_address_among_words() -> None:
    assert first_address_token("Maria Lopez maria@customer.example (mobile)") == (
        12,
        "maria@customer.example",
    )


def test_none_without_a_token() -> None:
    assert first_address_token("Maria Lopez") is None
    assert first_address_token("@ @@ a@ @b") is None


@given(st.text(alphabet='ab@ <>"(),.;:[]\t', max_size=60))
def test_agrees_with_the_reference_expression(text: str) -> None:
    expected = _REFERENCE.search(text)
    assert first_address_token(text) == ((expected.start(), expected.group()) if expected else None)


def test_a_long_header_without_an_address_is_cheap() -> None:
    started = time.thread_time()
    assert first_address_token("a" * 200_000 + " @") is None
    assert first_address_token("a" * 200_000) is None
    # Quadratic backtracking took seconds at 20 KB; linear work is milliseconds at 200 KB.
    assert time.thread_time() - started < 1.0
