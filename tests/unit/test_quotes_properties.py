"""Properties of reply trimming over generated replies (hypothesis): SPEC §4's rule, not examples of it.

- new text, then any attribution or separator variant we know, then quoted history: the new text;
- text with no quote markers loses nothing but blank lines at its ends, or a trailing signature after
  ``-- `` or client boilerplate;
- quotes between new paragraphs (inline answers) are kept, with their header;
- whatever the input, the trimmer returns (pytest-timeout bounds it; no speed is asserted).

The example counts are bounded for the normal suite; ``TICKETGATE_PROPERTY_EXAMPLES=5000 pytest
tests/unit/test_quotes_properties.py`` is the longer run (docs/performance/mail-reading.md).
"""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.mail.quotes import REPLY_MARKER, trim_reply

EXAMPLES = int(os.environ.get("TICKETGATE_PROPERTY_EXAMPLES", "150"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- what people write ---------------------------------------------------------------------------------

# Words of new text in several scripts; none is a header word, a device or a signature delimiter.
WORDS = [
    "the",
    "refund",
    "payment",
    "invoice",
    "arrived",
    "failed",
    "twice",
    "today",
    "yesterday",
    "please",
    "check",
    "again",
    "card",
    "bank",
    "Rechnung",
    "Zahlung",
    "bitte",
    "heute",
    "paiement",
    "facture",
    "merci",
    "pago",
    "factura",
    "gracias",
    "fattura",
    "grazie",
    "betaling",
    "factuur",
    "płatność",
    "faktura",
    "платёж",
    "счёт",
    "спасибо",
    "付款",
    "发票",
    "支払い",
    "請求書",
    "결제",
    "ödeme",
    "lasku",
    "42",
    "2026",
    "EUR",
]
NAMES = ["Jan Novák", "Ana Lima", "Bob Stone", "Zoë O'Brien", "Иван Петров", "王芳", "Ngọc Anh", "José"]
ADDRESSES = ["jan@example.cz", "ana.lima@example.com.br", "bob+help@example.org", "ivan@example.ru"]

sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(lambda w: " ".join(w) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=4).map("\n".join)
new_text = st.lists(paragraph, min_size=1, max_size=4).map("\n\n".join)


@st.composite
def attribution(draw: st.DrawFn) -> str:
    """A quote header as some client writes it, perhaps wrapped the way Gmail wraps long ones."""
    name, address = draw(st.sampled_from(NAMES)), draw(st.sampled_from(ADDRESSES))
    day, hour, minute = draw(st.integers(1, 28)), draw(st.integers(0, 23)), draw(st.integers(0, 59))
    date = draw(
        st.sampled_from(
            [
                f"{day:02}.11.2026",
                f"2026-11-{day:02}",
                f"11/{day}/2026",
                f"{day} Nov 2026",
                f"Mon, {day} Nov 2026",
            ]
        )
    )
    time = f"{hour:02}:{minute:02}"
    header = draw(
        st.sampled_from(
            [
                f"On {date} at {time}, {name} <{address}> wrote:",
                f"On {date}, {name} wrote:",
                f"{date} {time}, {name} <{address}>:",
                f"{date} {time} GMT+01:00 {name} <{address}>:",
                f"Am {date} um {time} schrieb {name} <{address}>:",
                f"{name} <{address}> schrieb am {date}, {time}:",
                f"Le {date} à {time}, {name} <{address}> a écrit :",
                f"El {date} a las {time}, {name} (<{address}>) escribió:",
                f"Il giorno {date} alle ore {time} {name} <{address}> ha scritto:",
                f"Em {date} às {time}, {name} <{address}> escreveu:",
                f"Op {date} om {time} schreef {name} <{address}>:",
                f"Den {date} kl. {time} skrev {name} <{address}>:",
                f"W dniu {date} o {time}, {name} <{address}> napisał(a):",
                f"Dne {date} v {time} {name} <{address}> napsal(a):",
                f"{date}, {time}, {name} <{address}> написал(а):",
                f"{date} klo {time} {name} <{address}> kirjoitti:",
                f"{name} <{address}>, {date} {time} tarihinde şunu yazdı:",
                f"在 {date} {time}，{name} <{address}> 写道：",
                f"* {name} <{address}> [{date} {time}]:",
            ]
        )
    )
    return draw(st.sampled_from([header, *_wrapped(header)]))


def _wrapped(header: str) -> list[str]:
    """The header broken before the address and before its last word, as clients wrap long lines."""
    variants = []
    if " <" in header:
        variants.append(header.replace(" <", "\n<", 1))
    head, _, last = header.rpartition(" ")
    if head:
        variants.append(f"{head}\n{last}")
    return variants


@st.composite
def outlook_block(draw: st.DrawFn) -> str:
    labels = draw(
        st.sampled_from(
            [
                ("From", "Sent", "To", "Subject"),
                ("Von", "Gesendet", "An", "Betreff"),
                ("De", "Envoyé", "À", "Objet"),
                ("De", "Enviado", "Para", "Asunto"),
                ("Da", "Inviato", "A", "Oggetto"),
                ("Van", "Verzonden", "Aan", "Onderwerp"),
                ("Od", "Wysłano", "Do", "Temat"),
                ("Från", "Skickat", "Till", "Ämne"),
                ("От", "Отправлено", "Кому", "Тема"),
            ]
        )
    )
    name, address = draw(st.sampled_from(NAMES)), draw(st.sampled_from(ADDRESSES))
    bold = draw(st.sampled_from(["", "*"]))
    values = [f"{name} <{address}>", "Monday, 30 November 2026 09:14", "support@example.org", "Refund"]
    fields = [f"{bold}{label}:{bold} {value}" for label, value in zip(labels, values, strict=True)]
    separator = draw(st.sampled_from(["", "_" * 32 + "\n", "=" * 10 + "\n", "-" * 20 + "\n"]))
    return separator + "\n".join(fields)


marker_line = st.sampled_from(
    [
        "-----Original Message-----",
        "===== Original Message =====",
        "***** Original Message *****",
        "----- Ursprüngliche Nachricht -----",
        "-----Mensaje original-----",
        "-------- Message d'origine --------",
        "---------- Forwarded message ---------",
        "-------- Weitergeleitete Nachricht --------",
        "Begin forwarded message:",
        REPLY_MARKER,
    ]
)
history_lines = st.lists(sentence, min_size=1, max_size=6)


@st.composite
def history(draw: st.DrawFn) -> str:
    lines = draw(history_lines)
    if draw(st.booleans()):
        return "\n".join(f"> {line}" for line in lines)
    return "\n".join(lines)


def expected_text(text: str) -> str:
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


# New text that starts with a number, a word and a year reads like a date ("42 the 2026", as "30 Nov 2026"),
# so above an attribution that is complete on its own it was taken for a date-first header's start and the
# customer's words went with the quote. Random drawing found it only now and then: it is pinned here.
TURKISH_ATTRIBUTION = "Jan Novák <jan@example.cz>, 01.11.2026 00:00 tarihinde şunu yazdı:"
NUMBER_WORD_YEAR = "42 the 2026. Thanks for the quick help."
REWRAPPED = "\n".join(
    [">", "> Refund the payment please check again today and the card bank failed twice", "arrived.", ">"]
)


# --- the properties ------------------------------------------------------------------------------------


@BOUNDED
@given(
    new_text,
    st.one_of(attribution(), outlook_block(), marker_line),
    history(),
    st.sampled_from(["\n", "\r\n"]),
)
@example(NUMBER_WORD_YEAR, TURKISH_ATTRIBUTION, "> Refund.", "\n")
@example(
    "3 March 2026 the card failed.", "* Ana Lima <ana.lima@example.com.br> [03.03.2026 10:00]:", "> Hi", "\n"
)
@example(
    "30 Nov 2026 the refund came", "Jan Novák <jan@example.cz> schrieb am 30.11.2026, 09:14:", "> Hi", "\n"
)
def test_new_text_over_any_known_header_and_history_is_the_new_part(
    text: str, header: str, quoted: str, newline: str
) -> None:
    reply = f"{text}\n\n{header}\n\n{quoted}\n".replace("\n", newline)
    assert trim_reply(reply).text == text


# Quoted history a client re-wrapped: the quoting client puts "> " before the original lines (up to 76
# columns) and the sending client breaks the result again at its own width, 68 to 80 columns, leaving the
# end of each long quoted line on a line of its own without ">". Latin words only: re-wrapping is by
# spaces, and the fragment rule reads "goes on in lower case".
LATIN_WORDS = [word for word in WORDS if word.isascii() and word.isalpha() and word.islower()]


@st.composite
def rewrapped_history(draw: st.DrawFn) -> str:
    width = draw(st.integers(68, 80))
    lines = [">"]
    for _ in range(draw(st.integers(1, 3))):
        words = draw(st.lists(st.sampled_from(LATIN_WORDS), min_size=15, max_size=60))
        original = textwrap.wrap(" ".join(words).capitalize() + ".", 76)
        for line in original:
            lines.extend(textwrap.wrap(f"> {line}", width, break_long_words=False))
        lines.append(">")
    return "\n".join(lines)


@BOUNDED
@given(new_text, attribution(), rewrapped_history(), st.sampled_from(["\n", "\r\n"]))
@example(NUMBER_WORD_YEAR, TURKISH_ATTRIBUTION, REWRAPPED, "\n")
@example("12 invoices 2026 and none arrived.", TURKISH_ATTRIBUTION, REWRAPPED, "\r\n")
def test_history_a_client_rewrapped_is_removed_whole(
    text: str, header: str, quoted: str, newline: str
) -> None:
    reply = f"{text}\n\n{header}\n{quoted}\n".replace("\n", newline)
    assert trim_reply(reply).text == text


@BOUNDED
@given(
    st.lists(st.sampled_from(LATIN_WORDS), min_size=4, max_size=14),
    st.sampled_from(["Version 2.3 on Android.", "Yes, twice.", "No.", "Not yet, sorry."]),
)
def test_an_answer_that_starts_a_sentence_under_any_quoted_line_is_kept(
    question: list[str], answer: str
) -> None:
    reply = f"Hi Jan,\n\n> {' '.join(question).capitalize()}?\n{answer}\n> And the phone?\nPixel 7.\n\nMaria"
    assert trim_reply(reply).text == reply


# Text without quote markers: letters of many scripts, digits, spaces and punctuation, but no ">" (a
# quote), no ":" (every header ends in one, every field has one) and no "@" (an address).
plain_line = st.text(
    alphabet=st.characters(
        whitelist_categories=("L", "N", "Zs"),
        whitelist_characters=".,!?;()'\"-_/&%+",
        blacklist_characters="\x85",
    ),
    max_size=120,
)


def _signs_only(line: str) -> bool:
    return bool(line.strip()) and not any(ch.isalnum() for ch in line)


@BOUNDED
@given(st.lists(plain_line, min_size=1, max_size=30))
def test_text_without_quote_markers_keeps_every_line(lines: list[str]) -> None:
    # A line of signs alone ("--", "___") is a delimiter or a separator, not text: drawn without them.
    lines = [line for line in lines if not _signs_only(line)]
    text = "\n".join(lines)
    assert trim_reply(text).text == expected_text(text)


@BOUNDED
@given(st.lists(plain_line, min_size=1, max_size=10), st.lists(plain_line, min_size=1, max_size=5))
def test_only_a_signature_after_the_delimiter_is_cut_from_unquoted_text(
    body: list[str], sig: list[str]
) -> None:
    body = [line for line in body if not _signs_only(line)]
    text = "\n".join(body)
    signature = "\n".join(line for line in sig if not _signs_only(line))
    assert trim_reply(f"{text}\n-- \n{signature}").text == expected_text(text)


BOILERPLATE = [
    "Sent from my iPhone",
    "Von meinem iPhone gesendet",
    "Get Outlook for Android",
    "Envoyé de mon iPhone",
    "Enviado desde mi iPhone",
    "Отправлено с iPhone",
]


@BOUNDED
@given(new_text, st.sampled_from(BOILERPLATE))
def test_only_boilerplate_at_the_end_is_cut_from_unquoted_text(text: str, boilerplate: str) -> None:
    assert trim_reply(f"{text}\n\n{boilerplate}\n").text == text


@BOUNDED
@given(
    st.lists(st.tuples(history_lines, paragraph), min_size=1, max_size=4),
    paragraph,
    st.one_of(st.just(""), attribution()),
)
def test_inline_answers_between_new_paragraphs_are_kept_without_their_attribution(
    exchanges: list[tuple[list[str], str]], opening: str, header: str
) -> None:
    parts = [opening]
    for quoted, answer in exchanges:
        parts.append("\n".join(f"> {line}" for line in quoted))
        parts.append(answer)
    answered = "\n\n".join(parts)
    # The attribution above the first quote goes (issue 23); the quotes and answers stay as written.
    reply = answered.replace("\n\n", f"\n\n{header}\n\n", 1) if header else answered
    assert trim_reply(reply).text == answered


@BOUNDED
@given(st.text(max_size=3000), st.one_of(st.none(), st.text(max_size=2000)))
def test_the_trimmer_never_raises(text: str, html: str | None) -> None:
    result = trim_reply(text, html=html)
    assert isinstance(result.text, str)
    assert len(result.text) <= len(text) + len(html or "") + 1


FRAGMENTS = [
    "On",
    "Mon,",
    "30.11.2026",
    "09:14",
    "Jan",
    "<jan@example.cz>",
    "wrote:",
    "schrieb",
    ">",
    "--",
    "From:",
    "Sent:",
    "*",
    "____",
    "<",
    "(",
    "@",
    "-----Original Message-----",
    "a écrit :",
    "\n",
    "\n",
    "\n",
]


@BOUNDED
@given(
    st.lists(
        st.sampled_from(FRAGMENTS),
        max_size=400,
    )
)
def test_the_trimmer_never_raises_on_header_fragments(tokens: list[str]) -> None:
    text = " ".join(tokens)
    result = trim_reply(text)
    assert len(result.text) <= len(text)


PATHOLOGICAL = {
    "long-line": "On " + "x" * 500_000 + " wrote:",
    "many-headers": "On Mon, 30 Nov 2026, Jan <jan@example.cz> wrote:\n> a\nb\n" * 3000,
    "many-fields": "From: a@example.org\nSent: Monday\n" * 5000,
    "many-separators": "____________\n" * 20_000,
    "nested-quotes": "\n".join(">" * depth + " text" for depth in range(5000)),
    "no-newlines-address-soup": "<a@b.cc> 30.11.2026 09:14 " * 20_000 + ":",
    "colons": ":" * 200_000,
    "wrapped-soup": "On Monday Jan\n<jan@example.cz>\n" * 10_000,
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_input_ends(text: str) -> None:
    result = trim_reply(text)
    assert len(result.text) <= len(text)
