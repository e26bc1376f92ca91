"""The pieces `parse_subject` takes out of a subject, as `ticketgate explain` shows them ("removed
prefix 'Re:', tag '[urgent]'"): asking for them never changes the result, and every prefix,
reference and tag put around a title is named, in the family of subjects SPEC §3 describes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import DEFAULT_VOCABULARY
from gateway.mail.subject import parse_subject

PREFIXES = ["Re:", "RE:", "Fwd:", "FW:", "AW:", "WG:", "SV:", "Antw:", "Re[2]:", "回复:", "Odp:"]
REFS = ["[SP-4]", "[#42]", "(SP-7)"]
TAGS = ["[urgent]", "[High][Bug]", "[billing]", "[idea, low]"]
TITLE = st.sampled_from(["Card declined", "Login fails on iOS", "Export button does nothing", "Réseau lent"])


def parse(subject: str, removed: list[str] | None = None):  # type: ignore[no-untyped-def]
    return parse_subject(subject, vocabulary=DEFAULT_VOCABULARY, ticket_prefix="SP", removed=removed)


def test_each_kind_of_piece_is_named_as_written() -> None:
    removed: list[str] = []
    info = parse("[urgent] Re: [SP-4] AW: SP-5: Card declined [bug]", removed)
    assert info.title == "Card declined"
    assert removed == [
        "prefix 'Re:'",
        "reference '[SP-4]'",
        "tag '[urgent]'",
        "tag '[bug]'",
        "prefix 'AW:'",
        "reference 'SP-5:'",
    ]
    kept: list[str] = []
    assert parse("[EXTERNAL] Quote [draft]", kept).title == "[EXTERNAL] Quote [draft]"
    assert kept == []  # unknown brackets stay in the title and are not "removed"


@settings(max_examples=150, deadline=None)
@given(
    title=TITLE,
    pieces=st.lists(st.sampled_from(PREFIXES + REFS + TAGS), min_size=0, max_size=5),
    trailing_tag=st.sampled_from(["", *TAGS]),
)
def test_every_piece_around_a_title_is_named_and_the_result_is_unchanged(
    title: str, pieces: list[str], trailing_tag: str
) -> None:
    subject = " ".join([*pieces, title, trailing_tag]).strip()
    removed: list[str] = []
    traced = parse(subject, removed)
    assert traced == parse(subject)  # asking for the trace changes nothing
    assert traced.title == title
    named = " ".join(removed)
    for piece in [*pieces, trailing_tag]:
        if piece:
            for part in piece.replace("][", "]\0[").split("\0"):  # "[High][Bug]" is two tags
                assert part in named, (piece, removed)
    assert len(removed) >= len({p for p in pieces if p in REFS or p in TAGS}) + bool(trailing_tag)
