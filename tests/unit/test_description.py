"""The ticket description (SPEC §1): at most 500 characters, cut at a word boundary with "…", tidied."""

from __future__ import annotations

import pytest

from gateway.mail.description import make_description


def test_short_text_is_untouched() -> None:
    text = "The payment page shows error 502 since this morning.\n\nBest regards,\nAna"
    assert make_description(text) == text


def test_text_of_exactly_the_limit_is_untouched() -> None:
    text = "x" * 500
    assert make_description(text) == text


def test_long_text_is_cut_at_a_word_boundary_with_an_ellipsis() -> None:
    words = [f"word{i}" for i in range(200)]  # about 1,300 characters
    description = make_description(" ".join(words))
    assert len(description) <= 500
    assert description.endswith("…")
    kept = description.removesuffix("…").split(" ")
    assert kept == words[: len(kept)]  # whole words only, none cut in half
    assert len(description) > 490  # and as many as fit


def test_the_cut_may_fall_right_after_a_word() -> None:
    text = "a" * 499 + " tail"
    assert make_description(text) == "a" * 499 + "…"


def test_the_cut_falls_at_a_line_break_too() -> None:
    text = "first line\n" + "y" * 600
    assert make_description(text) == "first line…"


def test_a_single_word_longer_than_the_limit_is_cut_inside_it() -> None:
    description = make_description("z" * 600)
    assert description == "z" * 499 + "…"
    assert len(description) == 500


def test_a_cut_inside_a_word_keeps_accents_with_their_letters() -> None:
    description = make_description("e\u0301" * 300, limit=10)
    assert description == "e\u0301" * 4 + "…"


def test_the_limit_can_be_set() -> None:
    assert make_description("one two three four", limit=10) == "one two…"


def test_runs_of_blank_lines_collapse_to_one() -> None:
    assert make_description("Hello\n\n\n\n\nthere\n\n\nfriend") == "Hello\n\nthere\n\nfriend"


def test_whitespace_is_tidied() -> None:
    text = "\n\n  Hello  \r\n\r\n\r\n\u200bthere\xa0you\t\r\n \n \n\n"
    assert make_description(text) == "Hello\n\nthere you"


def test_tidying_comes_before_counting() -> None:
    # Blank lines and trailing spaces do not use up the 500 characters.
    text = "word " * 90 + "\n" * 300 + "end"
    assert make_description(text) == ("word " * 90).rstrip() + "\n\nend"


def test_empty_text_gives_an_empty_description() -> None:
    assert make_description("") == ""
    assert make_description(" \n\n ") == ""


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        make_description("text", limit=0)
