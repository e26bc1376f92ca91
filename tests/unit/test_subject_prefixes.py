"""Reply/forward prefixes however clients space and decorate them (SPEC §3 step 2, issue 11).

The rule under test: a known prefix word, an optional counter, optional spaces, a colon. Written
without a space after the colon (`SV:Faktura`) it still counts when the word is capitalised as
clients write it; words that merely start like a prefix, and a lower-case brand like `re:Invent`,
stay in the title.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import DEFAULT_VOCABULARY
from gateway.mail.subject import parse_subject


def title(subject: str) -> str:
    return parse_subject(subject, vocabulary=DEFAULT_VOCABULARY, ticket_prefix="SP").title


@pytest.mark.parametrize(
    "subject",
    [
        "SV:Faktura 1043",
        "AW:Faktura 1043",
        "Re:Faktura 1043",
        "RE:Faktura 1043",
        "Re :Faktura 1043",
        "Re : Faktura 1043",
        "RE : Faktura 1043",
        "Re: Re:Re : Faktura 1043",
        "Fwd : Faktura 1043",
        "FW:Faktura 1043",
        "[Fwd: Faktura 1043]",
        "[Fwd: Re: SV:Faktura 1043]",
        "Re- Faktura 1043",
        "Re - Faktura 1043",
        "Fwd - Faktura 1043",
        "Re：Faktura 1043",
        "Re﹕Faktura 1043",
        "Re[2]: Faktura 1043",
        "Re[2]:Faktura 1043",
        "RE(3) : Faktura 1043",
        "Réf : Faktura 1043",
        "RÉF:Faktura 1043",
        "Отв: Faktura 1043",
        "Пересл: Faktura 1043",
        "Відп: Faktura 1043",
        "回复：Faktura 1043",
        "[EXTERNAL] SV:Faktura 1043",
    ],
)
def test_decorated_prefixes_are_removed(subject: str) -> None:
    expected = "[EXTERNAL] Faktura 1043" if subject.startswith("[EXTERNAL]") else "Faktura 1043"
    assert title(subject) == expected


def test_a_prefix_before_a_number_without_a_space() -> None:
    assert title("RE:2024 budget") == "2024 budget"


@pytest.mark.parametrize(
    "subject",
    [
        "Rest API fails",
        "re:Invent registration",
        "Recap: quarterly numbers",
        "Re-issue the invoice",
        "Refund: order 1043",
        "Fwding rules",
        "I:O error on upload",
        "R:base import",
        "Reason: card declined",
        "Trace: stack overflow",
    ],
)
def test_words_that_only_start_like_prefixes_stay(subject: str) -> None:
    assert title(subject) == subject


# --- property: any run of prefixes, counters and spacing gives the same title --------------------------

_TOKENS = ["Re", "RE", "Fwd", "FW", "Fw", "AW", "WG", "SV", "VS", "Antw", "TR", "RIF", "Odp", "PD", "YNT"]
_OTHER_SCRIPTS = ["回复", "转发", "答复", "返信", "Отв", "ΑΠ"]
_COUNTERS = ["", "[2]", "(3)", " [4]", "^2"]
_TITLES = ["Faktura 1043", "Login fails on Android", "登录失败", "Счёт не пришёл", "Ödeme alınmadı"]


@st.composite
def prefix(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        word = draw(st.sampled_from(_OTHER_SCRIPTS))
        return word + draw(st.sampled_from(_COUNTERS)) + draw(st.sampled_from(["", " "])) + ":"
    word = draw(st.sampled_from(_TOKENS))
    counter = draw(st.sampled_from(_COUNTERS))
    before = draw(st.sampled_from(["", " ", "  "]))
    colon = draw(st.sampled_from([":", "：", ":"]))
    return word + counter + before + colon


@settings(max_examples=200, deadline=None)
@given(
    prefixes=st.lists(prefix(), min_size=1, max_size=5),
    gaps=st.lists(st.sampled_from(["", " ", "  "]), min_size=5, max_size=5),
    text=st.sampled_from(_TITLES),
    wrapped=st.booleans(),
)
def test_any_prefix_run_reduces_to_the_same_title(
    prefixes: list[str], gaps: list[str], text: str, wrapped: bool
) -> None:
    subject = "".join(p + gap for p, gap in zip(prefixes, gaps, strict=False)) + text
    if wrapped:
        subject = f"[{subject}]" if subject.startswith(("Fwd", "FW", "Fw")) else subject
    assert title(subject) == text
