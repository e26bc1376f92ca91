"""The substring test in front of the bounce-wording searches (gateway/mail/signs.py) never
says "no" where the search would have matched: whatever text a pattern matches, it holds one of the
words the test looks for, and the functions give what the bare searches give."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail import signs

# Every string the pattern matches (hypothesis builds them from the regex itself, case changes and
# Unicode case equivalents included) contains one of the literals.
_MTA_PATTERNS = st.sampled_from([pattern for _, pattern in signs._MTA_SIGNATURES])


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_mta_signature_match_holds_one_of_its_words(data: st.DataObject) -> None:
    pattern = data.draw(_MTA_PATTERNS)
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    assert pattern.search(text)
    assert signs._may_contain(text, signs._MTA_SIGNATURE_LITERALS), (pattern.pattern, text)


@settings(max_examples=300, deadline=None)
@given(text=st.from_regex(signs._BOUNCE_WORDS, fullmatch=True))
def test_every_bounce_word_match_holds_one_of_its_words(text: str) -> None:
    assert signs._may_contain(text, signs._BOUNCE_WORD_LITERALS), text


# Text around the words: an ordinary body with, now and then, one of the patterns' own words.
_WORDS = st.sampled_from(
    [
        "hello",
        "the",
        "your",
        "message",
        "could",
        "not",
        "be",
        "delivered",
        "to",
        "address",
        "found",
        "mailbox",
        "full",
        "returned",
        "mail",
        "delivery",
        "status",
        "failure",
        "notice",
        "this",
        "is",
        "the",
        "mail",
        "system",
        "at",
        "host",
        "wasn't",
        "couldn't",
        "K",
        "ſ",
        "ß",
        "İ",
        "ı",
        "K",
        "MAİL",
        "\n",
    ]
)
_BODIES = st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=80).map(" ".join)


def _bare_mta(text: str) -> str | None:
    window = text[: signs.BODY_WINDOW]
    return next((name for name, pattern in signs._MTA_SIGNATURES if pattern.search(window)), None)


def _bare_words(text: str) -> str | None:
    match = signs._BOUNCE_WORDS.search(text[: signs.BODY_WINDOW])
    return match.group(0) if match else None


@settings(max_examples=500, deadline=None)
@given(text=_BODIES)
def test_the_functions_answer_as_the_bare_searches(text: str) -> None:
    assert signs.mta_signature(text) == _bare_mta(text)
    assert signs.bounce_words(text) == _bare_words(text)


def test_unicode_case_equivalents_pass_the_test() -> None:
    # `re` with IGNORECASE matches the Kelvin sign for "k", the long s for "s" and both Turkish Is
    # for "i"; "İ".casefold() would be two characters and split "mail".
    body = "Your MAİLBOX is full: User unKnown, deliveryſ, retrıed".replace("K", "\u212a")
    for word in ("unknown", "mailbox", "retried"):
        assert re.search(word, body, re.IGNORECASE)
        assert signs._may_contain(body, (word,))
    assert signs.bounce_words(body) == _bare_words(body)


def test_the_equivalents_table_is_every_non_ascii_character_re_takes_for_an_ascii_letter() -> None:
    letter = re.compile("[a-z]", re.IGNORECASE)
    found = {cp for cp in range(0x80, 0x110000) if letter.fullmatch(chr(cp))}
    assert found == set(signs._ASCII_EQUIVALENTS)
    assert all(re.fullmatch(signs._ASCII_EQUIVALENTS[cp], chr(cp), re.IGNORECASE) for cp in found)


def test_an_ordinary_body_skips_the_searches_and_a_bounce_does_not() -> None:
    ordinary = "Hi, I paid for SmilePass but the app says my card was declined. Maria"
    assert not signs._may_contain(ordinary, signs._MTA_SIGNATURE_LITERALS)
    assert not signs._may_contain(ordinary, signs._BOUNCE_WORD_LITERALS)
    bounce = "This is the mail system at host mx.example.\n\nI'm sorry: your message could not be delivered"
    assert signs.mta_signature(bounce) == "Postfix"
    assert signs.bounce_words(bounce) == "could not be deliver"


# Bounce words as senders write them: any case, the Unicode equivalents `re` takes for i, k and s,
# odd white space between the words, in the middle of other text.
_CASED_WORDS = st.from_regex(signs._BOUNCE_WORDS, fullmatch=True).flatmap(
    lambda word: st.lists(st.sampled_from(["upper", "lower", "title", "equivalents"]), min_size=1).map(
        lambda ways: _recased(word, ways)
    )
)


def _recased(word: str, ways: list[str]) -> str:
    for way in ways:
        if way == "equivalents":
            word = word.replace("i", "\u0131").replace("k", "\u212a").replace("s", "\u017f")
        else:
            word = getattr(word, way)()
    return word


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_CASED_WORDS, _WORDS, st.text(max_size=8)), max_size=30).map(" ".join))
def test_the_folded_search_finds_what_the_case_insensitive_one_finds(text: str) -> None:
    assert signs.bounce_words(text) == _bare_words(text)


def test_folding_keeps_every_character_one_character() -> None:
    # bounce_words reads the match's place in the folded window as its place in the window.
    assert all(len(signs._folded(chr(cp))) == 1 for cp in range(0x110000))
    assert signs._BOUNCE_WORDS_FOLDED.pattern == signs._BOUNCE_WORDS.pattern.lower()
