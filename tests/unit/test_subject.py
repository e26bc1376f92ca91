"""Subject → title, subject tags and ticket references (SPEC §3)."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from gateway.domain import (
    BILLING,
    DEFAULT_VOCABULARY,
    SECURITY,
    TECHNICAL,
    Priority,
    TagMeaning,
    TagVocabulary,
)
from gateway.mail.subject import SubjectInfo, cap_title, parse_subject


def parse(subject: str, *, prefix: str = "SP", body: str = "", read_tags: bool = True) -> SubjectInfo:
    return parse_subject(
        subject, vocabulary=DEFAULT_VOCABULARY, ticket_prefix=prefix, body=body, read_tags=read_tags
    )


def title(subject: str, **kwargs: str) -> str:
    return parse(subject, **kwargs).title


# --- reply and forward prefixes -------------------------------------------------------------------

SPEC_PREFIXES = [
    "Re:", "RE:", "re:", "Fwd:", "FWD:", "FW:", "Fw:", "AW:", "WG:", "SV:", "VS:", "Antw:", "TR:", "RIF:",
    "R:", "Odp:", "PD:", "YNT:", "回复:", "转发:", "答复:",
]  # fmt: skip
OTHER_PREFIXES = [
    "Réf. :", "Réf.:", "Ref:", "Enc:", "Doorst:", "Vs:", "Vá:", "VÁ:", "RES:", "RV:", "I:", "VL:", "Antwort:",
    "Odg:", "İLT:", "BLS:", "ΑΠ:", "ΣΧΕΤ:", "返信:", "転送:", "회신:",
    "回复：", "RE：", "AW :", "RE :", "TR :",
]  # fmt: skip


@pytest.mark.parametrize("prefix", SPEC_PREFIXES + OTHER_PREFIXES)
def test_each_prefix_is_removed(prefix: str) -> None:
    assert title(f"{prefix} Login fails") == "Login fails"


@pytest.mark.parametrize("prefix", ["回复：", "回复:", "RE："])
def test_cjk_prefix_needs_no_space(prefix: str) -> None:
    assert title(f"{prefix}登录失败") == "登录失败"


@pytest.mark.parametrize(
    "subject",
    [
        "Re[2]: Login fails",
        "Re(3): Login fails",
        "Re^2: Login fails",
        "Fwd[2]: Login fails",
        "RE [4]: Login fails",
    ],
)
def test_prefix_counters(subject: str) -> None:
    assert title(subject) == "Login fails"


@pytest.mark.parametrize("subject", ["rE: Login fails", "fWd: Login fails", "aW: Login fails"])
def test_prefixes_are_case_insensitive(subject: str) -> None:
    assert title(subject) == "Login fails"


def test_repeated_run_of_prefixes() -> None:
    assert title("Re: RE: Fwd: AW: WG: Re[2]: SV: Login fails") == "Login fails"


def test_prefixes_without_spaces_between_them() -> None:
    assert title("Re:Re:Fwd: Login fails") == "Login fails"


def test_prefix_after_an_unknown_leading_bracket() -> None:
    assert title("[EXTERNAL] RE: Invoice missing") == "[EXTERNAL] Invoice missing"


def test_old_mozilla_wrapped_forward() -> None:
    assert title("[Fwd: Invoice missing]") == "Invoice missing"


def test_prefix_in_the_middle_stays() -> None:
    assert title("Question about Re: lines") == "Question about Re: lines"


@pytest.mark.parametrize(
    "subject",
    [
        "Rest of the API is down",
        "Re-issue invoice",
        "Trial ends tomorrow",
        "Trial: ends tomorrow",
        "R2 bucket not found",
        "Refund please",
        "Fwding rules broken",
        "re:Invent registration",
        "Réf. 1234 manquante",
        "Resolution: 1080p not shown",
        "Visa card declined",
        "Iphone app crashes",
    ],
)
def test_titles_that_only_look_like_prefixes_are_kept(subject: str) -> None:
    assert title(subject) == subject


# --- ticket references ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "refs"),
    [
        ("[SP-42] Login fails", (42,)),
        ("Login fails [SP-42]", (42,)),
        ("[#42] Login fails", (42,)),
        ("SP-42: Login fails", (42,)),
        ("Login fails (SP-42)", (42,)),
        ("[sp-42] Login fails", (42,)),
        ("[ SP-42 ] Login fails", (42,)),
        ("Re: [SP-42] Login fails", (42,)),
    ],
)
def test_ticket_reference_forms(subject: str, refs: tuple[int, ...]) -> None:
    info = parse(subject)
    assert info.title == "Login fails"
    assert info.ticket_refs == refs


def test_several_references_in_order_without_repeats() -> None:
    info = parse("Re: [SP-7] merged with (SP-3) [SP-7]")
    assert info.ticket_refs == (7, 3)
    assert info.title == "merged with"


def test_bare_reference_in_prose_is_text() -> None:
    info = parse("Same problem as SP-42 last week")
    assert info.title == "Same problem as SP-42 last week"
    assert info.ticket_refs == ()


def test_other_prefix_than_sp() -> None:
    info = parse("Re: [TG-9] Login fails [SP-3]", prefix="TG")
    assert info.ticket_refs == (9,)
    assert info.title == "Login fails [SP-3]"


def test_our_own_notification_subject_round_trips() -> None:
    info = parse("RE: [SP-42] Cannot pay by card", read_tags=False)
    assert (info.title, info.ticket_refs) == ("Cannot pay by card", (42,))


def test_empty_ticket_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="ticket_prefix"):
        parse("x", prefix=" ")


# --- subject tags ---------------------------------------------------------------------------------


def test_priority_tag() -> None:
    info = parse("[urgent] Login fails")
    assert (info.title, info.priority, info.category, info.tags) == (
        "Login fails",
        Priority.URGENT,
        None,
        ("urgent",),
    )


def test_category_tag_anywhere() -> None:
    info = parse("Card charged twice [Billing]")
    assert (info.title, info.priority, info.category, info.tags) == (
        "Card charged twice",
        None,
        BILLING,
        ("billing",),
    )


def test_adjacent_tags() -> None:
    info = parse("[High][Bug] App crashes on start")
    assert (info.title, info.priority, info.category, info.tags) == (
        "App crashes on start",
        Priority.HIGH,
        TECHNICAL,
        ("high", "bug"),
    )


@pytest.mark.parametrize("bracket", ["[urgent, billing]", "[urgent billing]", "[URGENT;Billing]"])
def test_several_words_in_one_bracket(bracket: str) -> None:
    info = parse(f"{bracket} Card charged twice")
    assert (info.title, info.priority, info.category) == ("Card charged twice", Priority.URGENT, BILLING)


def test_most_urgent_priority_wins() -> None:
    info = parse("[low] [critical] [high] Site down")
    assert info.priority is Priority.URGENT
    assert info.tags == ("low", "critical", "high")


def test_first_category_wins() -> None:
    info = parse("[security] [billing] Card data exposed")
    assert info.category == SECURITY
    assert info.meaning == TagMeaning(category=SECURITY)


@pytest.mark.parametrize(
    "subject",
    [
        "[Payment failed] Card declined",
        "[SmilePass] Card declined",
        "[TG-42] Card declined",
        "[] Card declined",
    ],
)
def test_unknown_bracket_text_is_kept(subject: str) -> None:
    info = parse(subject)
    assert info.title == subject
    assert (info.priority, info.category, info.tags) == (None, None, ())


def test_tags_are_not_read_on_replies() -> None:
    info = parse("Re: [SP-4] [urgent] Login fails", read_tags=False)
    assert (info.title, info.priority, info.tags, info.ticket_refs) == (
        "[urgent] Login fails",
        None,
        (),
        (4,),
    )


def test_configured_vocabulary() -> None:
    vocabulary = TagVocabulary(words={"p1": TagMeaning(priority=Priority.URGENT)})
    info = parse_subject("[P1] [urgent] Down", vocabulary=vocabulary, ticket_prefix="SP")
    assert (info.title, info.priority) == ("[urgent] Down", Priority.URGENT)


# --- steps repeat until nothing changes -----------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "[urgent] Re: [SP-4] AW: title",
        "Re: [urgent] title",
        "[urgent] title",
        "Fwd: Re: [urgent] [SP-4] title",
        "SP-4: [urgent] RE: title",
    ],
)
def test_order_of_prefixes_refs_and_tags_does_not_matter(subject: str) -> None:
    info = parse(subject)
    assert (info.title, info.priority) == ("title", Priority.URGENT)


def test_dangling_separators_are_trimmed() -> None:
    assert title("[urgent] - Login fails") == "Login fails"
    assert title("Login fails - [bug]") == "Login fails"
    assert title("[urgent]: Re: Login fails") == "Login fails"
    assert title("Login fails | [SP-4]") == "Login fails"


def test_separators_that_belong_to_the_title_stay() -> None:
    assert title("Error: -v flag ignored") == "Error: -v flag ignored"
    assert title("/api/pay returns 500") == "/api/pay returns 500"


# --- decoding and whitespace ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=", "Grüße aus München"),
        ("=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=", "Grüße aus München"),
        ("=?ISO-8859-1?Q?Caf=E9_ferm=E9?=", "Café fermé"),
        ("Re: =?utf-8?q?=5Burgent=5D_Zahlung?= fehlgeschlagen", "Zahlung fehlgeschlagen"),
        ("=?utf-8?q?Login?=\r\n =?utf-8?q?_fails?=", "Login fails"),
    ],
)
def test_rfc2047_encoded_words(subject: str, expected: str) -> None:
    assert title(subject) == expected


def test_broken_encoded_word_is_tolerated() -> None:
    info = parse("=?utf-8?b?w6TD?= Login fails =?utf-8?q?unterminated")
    assert info.title.startswith("ä")
    assert info.title.endswith("Login fails =?utf-8?q?unterminated")


def test_unknown_charset_is_tolerated() -> None:
    assert title("=?x-no-such-charset?q?Login?= fails") == "Login fails"


def test_folded_newlines_and_whitespace_runs() -> None:
    assert title("Re: Login\r\n\tfails   on\n  mobile\t app") == "Login fails on mobile app"


def test_control_and_bidi_characters_are_removed() -> None:
    assert title("Login\x00 fails\u202e now") == "Login fails now"


# --- empty subjects and the cap -------------------------------------------------------------------


def test_empty_subject_takes_first_body_line() -> None:
    assert title("", body="\n  \n  I cannot   log in\nsince Monday") == "I cannot log in"


def test_subject_of_only_prefixes_and_tags_takes_body_line() -> None:
    info = parse("Re: [urgent] [SP-3]", body="Payment page is blank")
    assert (info.title, info.priority, info.ticket_refs) == ("Payment page is blank", Priority.URGENT, (3,))


def test_empty_subject_and_body_give_no_subject() -> None:
    assert title("   ", body=" \n\t\n") == "(no subject)"


def test_long_subject_is_capped_at_a_word_boundary() -> None:
    result = title("Re: " + "word " * 100)
    assert len(result) <= 200
    assert result.endswith("word…")
    assert "  " not in result


def test_long_body_line_is_capped() -> None:
    result = title("", body="x" * 500)
    assert result == "x" * 199 + "…"


def test_title_of_exactly_200_characters_is_not_cut() -> None:
    text = "a" * 200
    assert title(text) == text
    assert cap_title(text + "b") == "a" * 199 + "…"


# --- real-world subjects --------------------------------------------------------------------------


@pytest.mark.corpus
def test_every_corpus_subject_gives_a_one_line_title(corpus_dir: Path) -> None:
    mails = sorted(corpus_dir.rglob("*.eml"))
    assert mails, "no .eml files in the corpus"
    for path in mails:
        raw = email.message_from_bytes(path.read_bytes(), policy=policy.compat32).get("Subject", "")
        info = parse(str(raw), body="body line")
        assert info.title, path
        assert len(info.title) <= 200, path
        assert "\n" not in info.title and "\r" not in info.title, path
