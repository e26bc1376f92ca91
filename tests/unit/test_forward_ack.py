"""`#ack` in a staff forward's own text (gateway/pipeline/stages/open_forward.py): read among the command
lines at the top, as the command parser reads them, and taken out before it sees them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import DEFAULT_CATEGORIES, DEFAULT_VOCABULARY
from gateway.pipeline.commands import parse_commands
from gateway.pipeline.stages.open_forward import split_ack


def test_ack_among_the_commands_is_taken_out() -> None:
    assert split_ack("#assign me\n#ACK.\n\nShe called.") == (True, "#assign me\n\nShe called.")
    assert split_ack("#ack") == (True, "")
    assert split_ack("  #acknowledge  \n#urgent") == (True, "#urgent")


def test_ack_after_the_text_or_inside_a_line_is_text() -> None:
    assert split_ack("She called.\n#ack") == (False, "She called.\n#ack")
    assert split_ack("#ack me later") == (False, "#ack me later")
    assert split_ack("Please #ack her") == (False, "Please #ack her")


COMMANDS = st.sampled_from(
    ["#assign me", "#urgent", "#billing", "#note", "#priority high", "#in-progress", "#bogus"]
)
TEXT = st.lists(
    st.text("abcdefghij .,!?#:", min_size=1, max_size=30).filter(lambda s: not s.lstrip().startswith("#")),
    max_size=3,
)


@settings(max_examples=100, deadline=None)
@given(before=st.lists(COMMANDS, max_size=3), after=st.lists(COMMANDS, max_size=3), ack=st.booleans(),
       text=TEXT, blank=st.booleans())  # fmt: skip
def test_the_commands_parsed_are_those_of_the_text_without_its_ack(
    before: list[str], after: list[str], ack: bool, text: list[str], blank: bool
) -> None:
    lines = [*before, *(["#ack"] if ack else []), *([""] if blank else []), *after, *text]
    found, rest = split_ack("\n".join(lines))
    assert found is ack
    without = [*before, *([""] if blank else []), *after, *text]
    expected = parse_commands(
        "\n".join(without), vocabulary=DEFAULT_VOCABULARY, categories=DEFAULT_CATEGORIES
    )
    got = parse_commands(rest, vocabulary=DEFAULT_VOCABULARY, categories=DEFAULT_CATEGORIES)
    assert got == expected
    assert all(c.problem is None or "#ack" not in c.line.lower() for c in got.commands)
