"""Reply trimming on the families of real mail issue 23 named (SPEC §4), with examples written here.

One block per family, each with its look-alikes and a bounded hypothesis property; the corpus sets
(tests/integration/test_corpus_quotes.py) must stay where they were.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail.quotes import trim_reply
from tests.unit.test_quotes_families import FORWARDS
from tests.unit.test_quotes_properties import (
    ADDRESSES,
    BOUNDED,
    EXAMPLES,
    NAMES,
    history,
    history_lines,
    new_text,
    paragraph,
)

# A third of the property files' examples: the families are narrow, and the suite's time is shared
# (TICKETGATE_PROPERTY_EXAMPLES raises both for a longer run).
FAMILY = settings(BOUNDED, max_examples=max(EXAMPLES // 3, 30))


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


@FAMILY
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


@FAMILY
@given(st.sampled_from(NAMES), st.sampled_from(ADDRESSES), day, year)
def test_the_customers_words_are_never_all_that_is_removed(
    name: str, address: str, number: int, when: int
) -> None:
    opening = f"{number} the {when}. Thanks for the quick help."
    reply = f"{opening}\n\n{name} <{address}>, 01.11.{when} 00:00 tarihinde şunu yazdı:\n> Hi\n"
    assert new_part(reply) == opening


# --- date-first attributions with a name and no verb, with or without the address ---------------------

DATED_NAMES = [
    "2016-03-03 17:21 GMT+01:00 Some One <some@one.example>:",
    "2016-03-03 17:21 GMT+01:00 Some One:",
    "2016-03-03 17:21 Some One:",
    "03.03.2016 17:21, Some One:",
    "3 March 2016, 17:21, Some One:",
    "[03.03.2016 17:21] Zoë O'Brien:",
    "09:14, 30.11.2026, Jan Novák:",
    "30.11.2026, 09:14 +0100, от Иван Петров:",
    "2026/11/30 9:14 PM UTC Ana Lima:",
]


@pytest.mark.parametrize("header", DATED_NAMES)
def test_a_date_first_attribution_with_only_a_name_cuts_the_quote_below(header: str) -> None:
    assert new_part(f"Thanks, it works.\n\n{header}\n> Does it work now?\n> Jan\n") == "Thanks, it works."


@pytest.mark.parametrize("header", DATED_NAMES[1:])
def test_a_date_first_attribution_with_only_a_name_over_an_answer_is_a_bottom_post(header: str) -> None:
    assert new_part(f"{header}\n> Does it work now?\n\nYes, since this morning.\n") == (
        "Yes, since this morning."
    )


DATED_NAME_LOOK_ALIKES = [
    # Not above a quote: the sender's own note, kept.
    "Log of the failure.\n\n30.11.2026 09:14 Payment service:\n\nTimeout after 30 s.",
    # A person word: prose.
    "Thanks.\n\n30.11.2026 09:14 we called:\n> the bank said no",
    # No time: a date and a word, not an attribution.
    "Thanks.\n\n30.11.2026 Refund:\n> 40 EUR",
    # Digits in the "name": a log line.
    "Thanks.\n\n2026-11-30 09:14 error 500 in step 3:\n> retry",
]


@pytest.mark.parametrize("reply", DATED_NAME_LOOK_ALIKES)
def test_dated_lines_that_are_not_attributions_stay(reply: str) -> None:
    kept = reply.split("\n>")[0] if "\n>" in reply else reply
    assert new_part(reply) == kept


@FAMILY
@given(
    new_text,
    st.sampled_from(["2026-11-30", "30.11.2026", "11/30/2026", "30 Nov 2026", "2026/11/30"]),
    st.sampled_from(["09:14", "9:14 AM", "17:21:05"]),
    st.sampled_from(["", " GMT+01:00", " +0100", " UTC"]),
    st.sampled_from(NAMES),
    st.sampled_from(["", *ADDRESSES]),
    history(),
)
def test_any_date_first_attribution_with_a_name_cuts_the_history(
    text: str, date: str, time: str, zone: str, name: str, address: str, quoted: str
) -> None:
    header = f"{date} {time}{zone} {name}" + (f" <{address}>" if address else "") + ":"
    quoted = "\n".join(line if line.startswith(">") else f"> {line}" for line in quoted.split("\n"))
    assert new_part(f"{text}\n\n{header}\n{quoted}\n") == text


# --- decoration lines after the last sentence ----------------------------------------------------------

DECORATIONS = ["ᐧ", "***", "####", "~~~~~", "======", "++++++++", "* * *", "-=-=-=-=", "•", "_____"]


@pytest.mark.parametrize("decoration", DECORATIONS)
def test_a_decoration_line_after_the_last_sentence_is_removed(decoration: str) -> None:
    text = "The refund failed twice.\n\nThanks,\nMaria"
    assert new_part(f"{text}\n{decoration}\n") == text
    assert new_part(f"{text}\n\n{decoration}\n\n") == text


DECORATION_LOOK_ALIKES = [
    "The refund failed again???",
    "Is it fixed?\n???",
    "Thanks!\n:)",
    "Thanks!\n👍",
    "Thanks\n!!!",
    "Version\n1.2.3",
    "Order\n#4711",
    "+1",
    "Between the paragraphs\n***\nthe sign line stays",
]


@pytest.mark.parametrize("reply", DECORATION_LOOK_ALIKES)
def test_signs_that_say_something_stay(reply: str) -> None:
    assert new_part(reply) == reply


decoration_line = st.one_of(
    st.tuples(st.sampled_from("-=_*~#+"), st.integers(3, 40)).map(lambda pair: pair[0] * pair[1]),
    st.sampled_from(["ᐧ", "•", "·"]),
)


@FAMILY
@given(new_text, st.lists(decoration_line, min_size=1, max_size=3), st.sampled_from(["\n", "\n\n"]))
def test_any_run_of_decoration_lines_at_the_end_is_removed(text: str, lines: list[str], gap: str) -> None:
    assert new_part(text + gap + gap.join(lines) + "\n") == text


# --- inline answers: the attribution line goes, the quotes and answers stay ------------------------------

ATTRIBUTIONS = [
    "On Mon, 30 Nov 2026 at 09:14, Jan Novák <jan@example.cz> wrote:",
    "Am 30.11.2026 um 09:14 schrieb Jan Novák <jan@example.cz>:",
    "Le 30/11/2026 à 09:14, Jan Novák a écrit :",
    "2026-11-30 9:14 GMT+01:00 Jan Novák <jan@example.cz>:",
    "On Mon, 30 Nov 2026 at 09:14, Jan Novák <\njan@example.cz> wrote:",
]
ANSWERS = "> Does the refund work?\nYes, since today.\n\n> And the card?\nStill failing.\n\nMaria"


@pytest.mark.parametrize("header", ATTRIBUTIONS)
@pytest.mark.parametrize("gap", ["\n", "\n\n"], ids=["tight", "blank"])
def test_the_attribution_above_inline_answers_goes_and_the_answers_stay(header: str, gap: str) -> None:
    opening = "Hi Jan,\nmy answers are below."
    assert new_part(f"{opening}\n\n{header}{gap}{ANSWERS}\n") == f"{opening}\n\n{ANSWERS}"


@pytest.mark.parametrize("header", ATTRIBUTIONS)
def test_one_answer_under_an_opening_loses_the_attribution_too(header: str) -> None:
    reply = f"Hi Jan,\n\n{header}\n> Does the refund work?\n\nYes, since today.\n"
    assert new_part(reply) == "Hi Jan,\n\n> Does the refund work?\n\nYes, since today."


def test_inline_answers_from_the_very_top_keep_their_attribution() -> None:
    """With nothing of the sender's above it, the attribution is the only line saying whose questions
    are answered: kept, as the crisp corpus expects (its `email_tricky_18_inline_reply`)."""
    reply = f"{ATTRIBUTIONS[0]}\n{ANSWERS}"
    assert new_part(reply) == reply


def test_history_under_the_last_answer_still_goes_with_its_own_attribution() -> None:
    reply = (
        f"Hi Jan,\n\n{ATTRIBUTIONS[0]}\n{ANSWERS}\n\n"
        "On Sun, 29 Nov 2026 at 18:00, Ana <ana@example.org> wrote:\n> Older history\n"
    )
    assert new_part(reply) == f"Hi Jan,\n\n{ANSWERS}"


@FAMILY
@given(
    new_text,
    st.sampled_from(ATTRIBUTIONS),
    st.lists(st.tuples(history_lines, paragraph), min_size=1, max_size=4),
)
def test_any_interleaved_answers_keep_every_quote_and_answer(
    opening: str, header: str, exchanges: list[tuple[list[str], str]]
) -> None:
    body = "\n\n".join(
        "\n".join(f"> {line}" for line in quoted) + "\n\n" + answer for quoted, answer in exchanges
    )
    removed = trim_reply(f"{opening}\n\n{header}\n{body}\n")
    assert removed.text == f"{opening}\n\n{body}"
    assert removed.removed == header


# --- a body that is only a forward: the description is the forwarded text ------------------------------

FORWARD_HEADS = [
    "---------- Forwarded message ---------\nFrom: Bank <noreply@bank.example>\n"
    "Date: Mon, 30 Nov 2026 at 09:14\nSubject: Payment failed\nTo: <jan@example.cz>",
    "Begin forwarded message:\n\nFrom: Bank <noreply@bank.example>\nSubject: Payment failed\n"
    "Date: 30 November 2026 at 09:14:00 CET\nTo: jan@example.cz",
    "-------- Weitergeleitete Nachricht --------\nBetreff: \tZahlung\nDatum: \tMon, 30 Nov 2026 09:14\n"
    "Von: \tBank <noreply@bank.example>\nAn: \tjan@example.cz",
    "-------- Message transféré --------\nSujet : Paiement\nDate : Mon, 30 Nov 2026 09:14:00 +0100\n"
    "De : Bank <noreply@bank.example>",
    "---------- Forwarded message ---------",
]
FORWARDED = "Your payment of 40 EUR failed.\n\nPlease try another card."


@pytest.mark.parametrize("head", FORWARD_HEADS)
def test_a_forward_with_nothing_above_keeps_the_whole_and_names_the_forwarded_text(head: str) -> None:
    body = f"{head}\n\n{FORWARDED}\n"
    trimmed = trim_reply(body)
    assert trimmed.text == body.strip()  # the message keeps the whole forward
    assert trimmed.forwarded == FORWARDED


def test_the_forwarded_text_loses_its_own_quote_and_signature() -> None:
    trimmed = trim_reply(f"{FORWARD_HEADS[0]}\n\n{FORWARDED}\n\n-- \nBank\n\n> an older mail\n")
    assert trimmed.forwarded == FORWARDED


@pytest.mark.parametrize(
    "body",
    [
        f"Can you help?\n\n{FORWARD_HEADS[0]}\n\n{FORWARDED}",  # written above: that is the new text
        f"{FORWARDED}",  # no forward at all
        f"Thanks.\n\nOn Mon, 30 Nov 2026, Jan <jan@example.cz> wrote:\n> {FORWARDED}",
    ],
)
def test_only_a_forward_with_nothing_above_has_a_forwarded_text(body: str) -> None:
    assert trim_reply(body).forwarded is None


@FAMILY
@given(st.sampled_from([*FORWARD_HEADS, *FORWARDS]), new_text, st.sampled_from(["\n", "\r\n"]))
def test_what_the_description_shows_of_any_forward_alone_is_the_forwarded_text(
    head: str, text: str, newline: str
) -> None:
    """The ticket's description is ``forwarded`` when there is one, else the new part (an Outlook
    block at the top is cut from the new part already)."""
    trimmed = trim_reply(f"{head}\n\n{text}\n".replace("\n", newline))
    assert (trimmed.forwarded or trimmed.text) == text
