"""Reading a forward out of the mail that forwards it (gateway/mail/forward.py): every client's inline
forward in English, German, French and Spanish, the original attached whole, and the cases where the
original sender cannot be read. Property tests put forwards around random bodies, names, subjects and
addresses."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mail.forward import ATTACHED, read_forward
from gateway.mail.parse import parse_mail
from tests.client_mails import CLIENTS, Original, attached_forward, staff_forward
from tests.helpers import make_mail

MARIA = Original(
    "Maria Lopez", "maria@customer.example", "Payment failed", "My card was declined.\nError: 402"
)
LANGS = ("en", "de", "fr", "es")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_every_client_and_language_gives_the_original(client: str, lang: str) -> None:
    mail = parse_mail(staff_forward(MARIA, client, lang, note="#assign me\nShe called about this."))
    forward = read_forward(mail)
    assert forward is not None
    assert forward.sender is not None
    assert (forward.sender.address, forward.sender.name) == ("maria@customer.example", "Maria Lopez")
    assert forward.original.subject == "Payment failed"
    assert forward.original.text.strip() == "My card was declined.\nError: 402"
    assert forward.note.strip() == "#assign me\nShe called about this."
    assert forward.problem == ""


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_html_only_forwards_are_read_from_their_rendering(client: str) -> None:
    """Some clients send HTML alone; the parser renders it to text, and the forward is read there."""
    raw = staff_forward(MARIA, client, "de", note="Bitte ansehen")
    msg = parse_mail(raw)
    if msg.html is None:
        pytest.skip("a plain-text client")
    html_only = make_mail("WG: Payment failed", "x", sender="Ana <ana@smilepass.example>")
    from email import message_from_bytes, policy

    email_msg = message_from_bytes(html_only, policy=policy.default)
    email_msg.set_content(msg.html, subtype="html")
    forward = read_forward(parse_mail(email_msg.as_bytes()))
    assert forward is not None and forward.sender is not None
    assert forward.sender.address == "maria@customer.example"
    assert forward.original.subject == "Payment failed"
    assert "My card was declined." in forward.original.text
    assert "Bitte ansehen" in forward.note


def test_an_attached_original_is_parsed_whole() -> None:
    raw = attached_forward(
        MARIA, note="#ack", images=(("card.png", b"\x89PNG fake"),), message_id="<m1@customer.example>"
    )
    forward = read_forward(parse_mail(raw))
    assert forward is not None and forward.style == ATTACHED
    assert forward.sender is not None and forward.sender.address == "maria@customer.example"
    assert forward.original.subject == "Payment failed"
    assert forward.original.message_id == "m1@customer.example"
    assert forward.original.text.strip() == MARIA.body
    assert [a.filename for a in forward.original.attachments] == ["card.png"]
    assert forward.note.strip() == "#ack"


def test_a_mail_without_a_forward_is_none() -> None:
    plain = parse_mail(make_mail("Hello", "From: the start of the month we were charged twice.\nThanks"))
    assert read_forward(plain) is None
    reply = parse_mail(
        make_mail("Re: x", "Yes.\n\nOn Mon, 7 Dec 2026, Maria <maria@customer.example> wrote:\n> hi\n")
    )
    assert read_forward(reply) is None


def test_a_forwarded_from_without_an_address_says_why() -> None:
    nameless = Original("Maria Lopez", "maria@customer.example", "Payment failed", "Body")
    raw = staff_forward(nameless, "gmail").replace(
        b"From: Maria Lopez <maria@customer.example>", b"From: Maria Lopez"
    )
    forward = read_forward(parse_mail(raw))
    assert forward is not None and forward.sender is None
    assert "names no address" in forward.problem and "Maria Lopez" in forward.problem


def test_a_body_that_starts_like_a_header_is_still_the_body() -> None:
    original = Original("", "joe@shop.example", "Declined", "Error: card declined\nCode: 51")
    forward = read_forward(parse_mail(staff_forward(original, "apple")))
    assert forward is not None and forward.sender is not None
    assert forward.sender.address == "joe@shop.example"
    assert forward.original.text.strip() == "Error: card declined\nCode: 51"


def test_a_quoted_forward_is_unquoted() -> None:
    body = "See below\n\n-----Original Message-----\n> From: Joe <joe@shop.example>\n"
    mail = parse_mail(make_mail("FW: x", body, sender="Ana <ana@smilepass.example>"))
    assert read_forward(mail) is None  # a header block inside the quote is no forward header
    quoted = (
        "See below\n\n-----Original Message-----\nFrom: Joe <joe@shop.example>\nSent: Monday\nTo: ana\n"
        "Subject: Card\n\n> line one\n> line two\n"
    )
    forward = read_forward(parse_mail(make_mail("FW: x", quoted, sender="Ana <ana@smilepass.example>")))
    assert forward is not None and forward.original.text == "line one\nline two"


# --- properties -------------------------------------------------------------------------------------

_LOCAL = st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum() and ".." not in s
)
_DOMAIN = st.lists(st.text(string.ascii_lowercase, min_size=2, max_size=8), min_size=2, max_size=3).map(
    ".".join
)
ADDRESSES = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN)
NAMES = st.one_of(
    st.just(""),
    st.lists(st.text(string.ascii_letters + "éñüçÅ", min_size=1, max_size=10), min_size=1, max_size=3).map(
        " ".join
    ),
)
_WORDS = (
    st.text(string.ascii_letters + string.digits + " ,.!?äéñ'()-", min_size=1, max_size=60)
    .map(str.strip)
    .filter(bool)
)
SUBJECTS = _WORDS.filter(lambda s: ":" not in s)
# Body lines: anything people write, "Label: value" lines and blank lines included.
BODY_LINES = (
    st.lists(
        st.one_of(
            _WORDS,
            st.builds(lambda a, b: f"{a}: {b}", _WORDS.filter(lambda s: ":" not in s), _WORDS),
            st.just(""),
        ),
        min_size=1,
        max_size=8,
    )
    .map(lambda lines: "\n".join(lines).strip("\n"))
    .filter(lambda s: s.strip() != "")
)
NOTES = st.one_of(st.just(""), st.lists(_WORDS, min_size=1, max_size=3).map("\n".join))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    client=st.sampled_from(sorted(CLIENTS)),
    lang=st.sampled_from(LANGS),
    name=NAMES,
    address=ADDRESSES,
    subject=SUBJECTS,
    body=BODY_LINES,
    note=NOTES,
)
def test_any_forward_gives_back_its_sender_subject_body_and_note(
    client: str, lang: str, name: str, address: str, subject: str, body: str, note: str
) -> None:
    original = Original(name, address, subject, body)
    forward = read_forward(parse_mail(staff_forward(original, client, lang, note=note)))
    assert forward is not None
    assert forward.sender is not None and forward.sender.address == address
    assert forward.sender.name == " ".join(name.split())
    assert forward.original.subject == " ".join(subject.split())
    assert _lines(forward.original.text) == _lines(body)
    assert _lines(forward.note) == _lines(note)


@settings(max_examples=60, deadline=None)
@given(name=NAMES, address=ADDRESSES, subject=SUBJECTS, body=BODY_LINES, note=NOTES)
def test_any_attached_forward_gives_back_its_original(
    name: str, address: str, subject: str, body: str, note: str
) -> None:
    forward = read_forward(parse_mail(attached_forward(Original(name, address, subject, body), note=note)))
    assert forward is not None and forward.style == ATTACHED
    assert forward.sender is not None and forward.sender.address == address
    assert _lines(forward.original.text) == _lines(body)


@settings(max_examples=100, deadline=None)
@given(body=BODY_LINES, subject=SUBJECTS)
def test_a_mail_that_forwards_nothing_is_never_read_as_a_forward(body: str, subject: str) -> None:
    assert read_forward(parse_mail(make_mail(subject, body + "\n"))) is None


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.strip().splitlines() if line.strip()]


def test_an_attached_message_without_a_usable_from_says_why() -> None:
    raw = attached_forward(MARIA).replace(
        b"From: Maria Lopez <maria@customer.example>", b"From: Maria Lopez <>"
    )
    forward = read_forward(parse_mail(raw))
    assert forward is not None and forward.style == ATTACHED and forward.sender is None
    assert forward.problem == "the attached message's From names no usable address ('Maria Lopez <>')"
    assert forward.original.subject == "Payment failed"  # the rest of it is still read
