"""The new part of real replies from the shared corpus, against the results the corpus expects (SPEC §4).

Each corpus set is a list of cases with its own notion of a match; the per-mail tests pin every mail
that passes today, the rate floors catch a regression in the whole. ``bench/trimming_rate.py`` prints
the same figures, for ticketgate and for the libraries we measured against.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.pipeline.quotes import trim_reply

pytestmark = pytest.mark.corpus

STANDARD_DIR = Path("talon/tests/fixtures/standard_replies")
HTML_DIR = Path("talon/tests/fixtures/html_replies")
SIGNATURE_DIR = Path("talon/tests/fixtures/signature/emails/stripped")
ODD_DIR = Path("talon/tests/fixtures")
TRIMMER_DIR = Path("reply-trimmer")

HTML_EXPECTED = "Hi. I am fine.\n\nThanks,\nAlex"

# Where SPEC §4 and the corpus disagree, the SPEC wins: a reply that is all quote has an empty new part
# (reply-trimmer keeps the quote when nothing else is left).
SPEC_OVERRIDES = {"quote_only": ""}

# The quoted header each odd reply carries; it must not survive.
ODD_HEADERS = {
    "OLK_SRC_BODY_SECTION.html": "bob@example.com",
    "reply-separated-by-hr.html": "bob@example.com",
    "reply-quotations-share-block.eml": "xxx@example.com",
}


@dataclass(frozen=True)
class Case:
    """One corpus mail: the body to trim, and how to judge the new part."""

    set_name: str
    name: str
    text: str
    html: str | None
    expected: str
    matches: Callable[[str, str], bool]


def same_stripped(actual: str, expected: str) -> bool:
    return actual.strip() == expected.strip()


def same_without_whitespace(actual: str, expected: str) -> bool:
    return re.sub(r"\s+", "", actual) == re.sub(r"\s+", "", expected)


def keeps_text_without_header(actual: str, header: str) -> bool:
    return bool(actual.strip()) and header not in actual


def _read_text(path: Path) -> str:
    # The corpus files are read as bytes: CRLF and raw charsets must reach the trimmer untouched.
    return path.read_bytes().decode("utf-8")


def eml_bodies(path: Path) -> tuple[str, str | None]:
    """The text/plain body and the text/html body of a mail file, read with the stdlib parser."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    text = plain.get_content() if isinstance(plain, EmailMessage) else ""
    markup = html.get_content() if isinstance(html, EmailMessage) else None
    return text, markup


def standard_cases(corpus: Path) -> Iterator[Case]:
    for path in sorted((corpus / STANDARD_DIR).glob("*.eml")):
        text, html = eml_bodies(path)
        yield Case("standard_replies", path.stem, text, html, "Hello", same_stripped)


def html_cases(corpus: Path) -> Iterator[Case]:
    for path in sorted((corpus / HTML_DIR).glob("*.html")):
        yield Case("html_replies", path.stem, "", _read_text(path), HTML_EXPECTED, same_without_whitespace)


def trimmer_cases(corpus: Path, *, spec: bool = True) -> Iterator[Case]:
    for path in sorted((corpus / TRIMMER_DIR / "emails").glob("*.txt")):
        expected = _read_text(corpus / TRIMMER_DIR / "trimmed" / path.name)
        if spec:
            expected = SPEC_OVERRIDES.get(path.stem, expected)
        yield Case("reply-trimmer", path.stem, _read_text(path), None, expected, same_stripped)


def signature_cases(corpus: Path, *, talon: bool = False) -> Iterator[Case]:
    """Bodies ending in a signature. None has a ``-- `` delimiter, so SPEC §4 keeps each body whole;
    with ``talon=True`` the expectation is talon's instead (body less its name/phone signature)."""
    for path in sorted((corpus / SIGNATURE_DIR).glob("*_body")):
        body = _read_text(path)
        expected = body
        if talon:
            signature = _read_text(path.with_name(path.name.replace("_body", "_signature"))).strip()
            if signature:
                expected = body.strip()[: -len(signature)]
        yield Case("signature", path.name.removesuffix("_body"), body, None, expected, same_stripped)


def odd_cases(corpus: Path) -> Iterator[Case]:
    for name, header in ODD_HEADERS.items():
        path = corpus / ODD_DIR / name
        if path.suffix == ".eml":
            text, html = eml_bodies(path)
        else:
            text, html = "", _read_text(path)
        yield Case("odd", path.stem, text, html, header, keeps_text_without_header)


def all_cases(corpus: Path) -> list[Case]:
    return [
        *standard_cases(corpus),
        *html_cases(corpus),
        *trimmer_cases(corpus),
        *odd_cases(corpus),
    ]


def passes(case: Case) -> bool:
    return case.matches(trim_reply(case.text, html=case.html).text, case.expected)


# --- per mail ------------------------------------------------------------------------------------------

STANDARD = [
    "android",
    "aol",
    "apple_mail",
    "apple_mail_2",
    "comcast",
    "gmail",
    "hotmail",
    "iphone",
    "outlook",
    "sparrow",
    "thunderbird",
    "yahoo",
]
HTML = [
    "gmail",
    "hotmail",
    "mail_ru",
    "ms_outlook_2003",
    "ms_outlook_2007",
    "ms_outlook_2010",
    "thunderbird",
    "windows_mail",
    "yandex_ru",
]
TRIMMER = [
    "block_code_spacers",
    "dual_embedded",
    "email_headers_2",
    "email_headers_4",
    "embedded_ception",
    "embedded_email_10",
    "embedded_email_12",
    "embedded_email_14",
    "embedded_email_16",
    "embedded_email_18",
    "embedded_email_2",
    "embedded_email_4",
    "embedded_email_6",
    "embedded_email_8",
    "embedded_email_chinese",
    "embedded_email_dutch_2",
    "embedded_email_french_2",
    "embedded_email_german_2",
    "embedded_email_german_4",
    "embedded_email_german_6",
    "embedded_email_norwegian",
    "embedded_email_polish_2",
    "embedded_email_quote_text",
    "embedded_email_russian_2",
    "embedded_email_spanish_2",
    "embedded_email_ukrainian",
    "forwarded_gmail",
    "normalize_line_endings",
    "quote_only",
    "signatures",
    "spam_2",
    "text_only",
]
SIGNATURE = ["camel_case", "jeff", "johndoeexamplecom", "long", "short_url", "sparse"]
ODD = ["OLK_SRC_BODY_SECTION", "reply-separated-by-hr", "reply-quotations-share-block"]

# Mails that still fail, each with the reason; strict xfail, so a fix makes the test say so.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

# The rates measured when this was written (rounded down); a regression falls below them.
RATE_FLOORS = {
    "standard_replies": 1.0,
    "html_replies": 1.0,
    "reply-trimmer": 1.0,
    "odd": 1.0,
    "overall": 1.0,
}


def _case(corpus: Path, set_name: str, name: str) -> Case:
    loaders = {
        "standard_replies": standard_cases,
        "html_replies": html_cases,
        "reply-trimmer": trimmer_cases,
        "signature": signature_cases,
        "odd": odd_cases,
    }
    for case in loaders[set_name](corpus):
        if case.name == name:
            return case
    raise AssertionError(f"{set_name}/{name} is not in the corpus")


def _params(set_name: str, names: list[str]) -> list[object]:
    params: list[object] = []
    for name in names:
        reason = KNOWN_FAILURES.get((set_name, name))
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(set_name, name, marks=marks, id=f"{set_name}/{name}"))
    return params


@pytest.mark.parametrize(
    ("set_name", "name"),
    [
        *_params("standard_replies", STANDARD),
        *_params("html_replies", HTML),
        *_params("reply-trimmer", TRIMMER),
        *_params("odd", ODD),
        *_params("signature", SIGNATURE),
    ],
)
def test_new_part_of_corpus_mail(corpus_dir: Path, set_name: str, name: str) -> None:
    case = _case(corpus_dir, set_name, name)
    actual = trim_reply(case.text, html=case.html).text
    assert case.matches(actual, case.expected), f"got:\n{actual}\n--- expected:\n{case.expected}"


@pytest.mark.parametrize(
    ("loader", "names"),
    [
        (standard_cases, STANDARD),
        (html_cases, HTML),
        (trimmer_cases, TRIMMER),
        (signature_cases, SIGNATURE),
        (odd_cases, ODD),
    ],
)
def test_every_corpus_mail_is_listed(
    corpus_dir: Path, loader: Callable[[Path], Iterator[Case]], names: list[str]
) -> None:
    # A mail added to the corpus must get a per-mail test too, not hide in the rate.
    assert sorted(case.name for case in loader(corpus_dir)) == sorted(names)


def test_rates_stay_above_the_measured_floor(corpus_dir: Path) -> None:
    cases = all_cases(corpus_dir)
    results = [(case.set_name, passes(case)) for case in cases]
    for set_name, floor in RATE_FLOORS.items():
        outcomes = [ok for name, ok in results if set_name in (name, "overall")]
        rate = sum(outcomes) / len(outcomes)
        assert rate >= floor, f"{set_name}: {rate:.1%} < {floor:.0%}"
