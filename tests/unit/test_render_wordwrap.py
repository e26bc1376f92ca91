"""The templates' `wordwrap` filter (gateway.notify.render.wordwrap) skips `textwrap` for lines it
would give back unchanged: it must give exactly what Jinja2's own filter gives."""

from __future__ import annotations

import jinja2
import jinja2.filters
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.notify.render import Renderer, wordwrap

_ENV = jinja2.Environment()
_PIECES = st.sampled_from(
    [" ", "  ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\u2028", "\u00a0", "\u3000", "-",
     "word", "hyphen-ated", "a" * 30, "é", "Ticket TG-12:", '"title"', ""]
)  # fmt: skip


def _outcome(filter_: object, *args: object) -> str | type[Exception]:
    try:
        return filter_(_ENV, *args)  # type: ignore[operator, no-any-return]
    except ValueError as error:
        return type(error)


@settings(max_examples=1000, deadline=None)
@given(
    text=st.lists(st.one_of(_PIECES, st.text(max_size=10)), max_size=40).map("".join),
    width=st.integers(min_value=-1, max_value=80),
    break_long_words=st.booleans(),
    wrapstring=st.sampled_from([None, "\n", "\n    ", "<br>"]),
    break_on_hyphens=st.booleans(),
)
@example(text="", width=72, break_long_words=False, wrapstring=None, break_on_hyphens=False)
@example(text="x" * 72 + " ", width=72, break_long_words=False, wrapstring=None, break_on_hyphens=False)
@example(
    text="  lead\n trail \u00a0", width=72, break_long_words=False, wrapstring=None, break_on_hyphens=False
)
def test_same_text_as_jinja2s_filter(
    text: str, width: int, break_long_words: bool, wrapstring: str | None, break_on_hyphens: bool
) -> None:
    args = (text, width, break_long_words, wrapstring, break_on_hyphens)
    assert _outcome(wordwrap, *args) == _outcome(jinja2.filters.do_wordwrap, *args)


def test_the_templates_use_it() -> None:
    template = Renderer()._env.from_string("{{ text | wordwrap(10) }}")
    assert template.render(text="a b c d e f g h i j k") == "a b c d e\nf g h i j\nk"
    assert Renderer()._env.filters["wordwrap"] is wordwrap
