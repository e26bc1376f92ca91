"""Reply trimming on the families of real mail issue 23 named (SPEC §4), with examples written here.

One block per family, each with its look-alikes and a bounded hypothesis property; the corpus sets
(tests/integration/test_corpus_quotes.py) must stay where they were.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.mail.quotes import trim_reply
from tests.unit.test_quotes_properties import ADDRESSES, BOUNDED, NAMES, history, new_text


def new_part(text: str) -> str:
    return trim_reply(text).text


# --- new text whose first words read like a date, above a whole attribution ----------------------------

# Attributions known by their verb (or an address in brackets) that name a date and a time: whole on
# their own line, whatever is above them.
WHOLE_ATTRIBUTIONS = [
    "Jan Novák <jan@example.cz>, 01.11.2026 00:00 tarihinde şunu yazdı:",
    "Jan Novák <jan@example.cz> schrieb am 30.11.2026, 09:14:",
    "* Ana Lima <ana.lima@example.com.br> [2026-11-30 09:14]:",
    "在 2026-11-30 09:14，王芳 <wang@example.cn> 写道：",
    "Jan Novák <jan@example.cz> wrote on 30.11.2026 09:14:",
]
DATE_LIKE_OPENINGS = [
    "42 the 2026. Thanks for the quick help.",
    "12 invoices 2026 and none arrived.",
    "3 March 2026 the card failed again.",
    "30 Nov 2026 was the day of the refund!",
]


@pytest.mark.parametrize("header", WHOLE_ATTRIBUTIONS)
@pytest.mark.parametrize("opening", DATE_LIKE_OPENINGS)
@pytest.mark.parametrize("gap", ["\n\n", "\n"], ids=["blank", "adjacent"])
def test_words_that_read_like_a_date_are_not_taken_into_the_attribution_below(
    opening: str, header: str, gap: str
) -> None:
    reply = f"{opening}{gap}{header}\n> Could you confirm the refund?\n> Jan\n"
    assert new_part(reply) == opening


def test_a_header_wrapped_after_an_abbreviated_month_is_still_cut_whole() -> None:
    """The line above a whole header is taken in when it does not end a sentence: "30 nov." ends a date."""
    for header in (
        "Le lun. 30 nov.\n2026 à 09:14, Jan <jan@example.fr> a écrit :",
        "Am Mo., 30. Nov.\n2026 um 09:14 Uhr schrieb Jan Novák <jan@example.cz>:",
    ):
        assert new_part(f"Merci.\n\n{header}\n> Bonjour\n") == "Merci."


day = st.integers(1, 99)
year = st.integers(1990, 2039)
word = st.sampled_from(["the", "invoices", "March", "Nov", "payments", "items", "refunds", "of"])


@BOUNDED
@given(
    day, word, year, new_text, st.sampled_from(WHOLE_ATTRIBUTIONS), history(), st.sampled_from(["\n\n", "\n"])
)
def test_any_number_word_year_opening_survives_any_whole_attribution(
    number: int, middle: str, when: int, rest: str, header: str, quoted: str, gap: str
) -> None:
    text = f"{number} {middle} {when} {rest}"
    if not text.rstrip().endswith((".", "!", "?")) and gap == "\n":
        text += "."  # a line right above a header is taken in unless it ends a sentence
    assert new_part(f"{text}{gap}{header}\n{quoted}\n") == text


@BOUNDED
@given(st.sampled_from(NAMES), st.sampled_from(ADDRESSES), day, year)
def test_the_customers_words_are_never_all_that_is_removed(
    name: str, address: str, number: int, when: int
) -> None:
    opening = f"{number} the {when}. Thanks for the quick help."
    reply = f"{opening}\n\n{name} <{address}>, 01.11.{when} 00:00 tarihinde şunu yazdı:\n> Hi\n"
    assert new_part(reply) == opening
