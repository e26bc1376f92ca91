"""Leading junk (SPEC §2): lines before the header section are cut; only input with no header
section within its first lines is "not a mail"."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import NotAMailError
from gateway.mail.parse import parse_mail
from gateway.mail.rawmail import JUNK_WINDOW_LINES, content_hash, looks_like_mail

MAIL = (
    b"From: Maria Lopez <maria@customer.example>\r\n"
    b"To: support@smilepass.example\r\n"
    b"Subject: Card declined at checkout\r\n"
    b"Message-ID: <junk-1@customer.example>\r\n"
    b"\r\n"
    b"My card is declined every time.\r\n"
)

JUNK = {
    "mbox line": b"From maria@customer.example Mon Nov 30 09:14:00 2026\n",
    "byte-order mark": b"\xef\xbb\xbf",
    "blank lines": b"\r\n\n\r\n",
    "outlook separator": b"----- Original message -----\r\n",
    "equals rule": b"==============================\n",
    "tool note": b"Exported by MailArchiver 2.1 on 2026-11-30 09:20\nMessage 3 of 12\n\n",
    "forward banner": b"-------- Forwarded Message --------\n",
    "bom, blank and mbox line": b"\xef\xbb\xbf\nFrom maria@customer.example Mon Nov 30 09:14:00 2026\n",
}


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
def test_a_mail_below_leading_junk_is_read_from_its_header_section(junk: bytes) -> None:
    raw = junk + MAIL
    assert looks_like_mail(raw)
    mail = parse_mail(raw)
    assert mail.subject == "Card declined at checkout"
    assert mail.sender is not None and mail.sender.address == "maria@customer.example"
    assert mail.text.strip() == "My card is declined every time."
    # the same mail, with or without the junk, is one mail for de-duplication
    assert mail.content_hash == content_hash(MAIL)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"Hello, this is just a text file.\nIt has no headers at all.\n",
        b"Minutes of the meeting\nNote: bring the invoices\nThanks\n",
        bytes(range(256)) * 4,
    ],
    ids=["empty", "blank", "text", "text with one colon line", "binary"],
)
def test_input_with_no_header_section_is_not_a_mail(raw: bytes) -> None:
    assert not looks_like_mail(raw)
    with pytest.raises(NotAMailError):
        parse_mail(raw)


def test_a_header_section_below_the_first_lines_is_not_looked_for() -> None:
    prose = b"".join(b"line %d of a long text\n" % n for n in range(JUNK_WINDOW_LINES + 5))
    assert not looks_like_mail(prose + MAIL)


def test_one_header_line_after_a_note_is_not_a_header_section() -> None:
    assert not looks_like_mail(b"Shopping list\nMilk: two litres\n\nand bread\n")


_JUNK_LINES = st.sampled_from(
    [
        b"\n",
        b"\r\n",
        b"----- Original Message -----\n",
        b"=====\n",
        b"********\n",
        b"Saved from Webmail\n",
        b"Begin forwarded message\n",
        b"From someone@somewhere.example Tue Dec  1 10:00:00 2026\n",
    ]
)


@settings(max_examples=100, deadline=None)
@given(junk=st.lists(_JUNK_LINES, max_size=6), bom=st.booleans())
def test_any_few_junk_lines_give_the_same_mail(junk: list[bytes], bom: bool) -> None:
    raw = (b"\xef\xbb\xbf" if bom else b"") + b"".join(junk) + MAIL
    mail = parse_mail(raw)
    assert (mail.subject, mail.message_id) == ("Card declined at checkout", "junk-1@customer.example")
    assert mail.content_hash == content_hash(MAIL)
