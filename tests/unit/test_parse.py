"""Parsing raw mail bytes into ParsedMail: what the rest of the pipeline sees of a mail, however broken."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gateway.domain import Address
from gateway.errors import NotAMailError
from gateway.mail.html_text import html_to_text
from gateway.mail.parse import content_hash, looks_like_mail, parse_mail

DATA = Path(__file__).resolve().parent.parent / "data" / "parse"


def mail(*headers: str, body: bytes = b"Hello support,\nmy login fails.\n", eol: bytes = b"\n") -> bytes:
    """A mail from header lines (str, ASCII) and a body (bytes, written with LF; converted to ``eol``)."""
    head = eol.join(h.encode("ascii") for h in headers)
    return head + eol + eol + body.replace(b"\n", eol)


BASIC = (
    "From: Ana Lima <ana@customer.example>",
    "To: Support <support@smilepass.example>, ops@smilepass.example",
    "Cc: Bo <bo@customer.example>",
    "Reply-To: ana.private@customer.example",
    "Subject: Login fails",
    "Date: Tue, 04 Mar 2025 09:15:00 +0100",
    "Message-ID: <abc.123@customer.example>",
)


# --- plain, HTML, alternatives -------------------------------------------------------------------


def test_plain_mail_gives_every_field() -> None:
    parsed = parse_mail(mail(*BASIC, "Delivered-To: support@smilepass.example"))

    assert parsed.message_id == "abc.123@customer.example"
    assert parsed.subject == "Login fails"
    assert parsed.sender == Address("ana@customer.example", "Ana Lima")
    assert parsed.to == (
        Address("support@smilepass.example", "Support"),
        Address("ops@smilepass.example", ""),
    )
    assert parsed.cc == (Address("bo@customer.example", "Bo"),)
    assert parsed.reply_to == (Address("ana.private@customer.example", ""),)
    assert parsed.delivered_to == ("support@smilepass.example",)
    assert parsed.date == datetime(2025, 3, 4, 8, 15, tzinfo=UTC)
    assert parsed.text == "Hello support,\nmy login fails."
    assert parsed.html is None
    assert parsed.attachments == ()
    assert parsed.content_type == "text/plain"
    assert parsed.header("SUBJECT") == "Login fails"
    assert parsed.headers["message-id"] == ("<abc.123@customer.example>",)
    assert parsed.content_hash == content_hash(mail(*BASIC, "Delivered-To: support@smilepass.example"))


def test_html_only_mail_is_converted_to_text() -> None:
    raw = mail(
        *BASIC,
        "Content-Type: text/html; charset=utf-8",
        body=b"<html><head><style>p {color: red}</style></head><body>"
        b"<p>Hello&nbsp;support,</p><p>login fails &amp; I get <b>error 42</b>.<br>Thanks</p>"
        b"<script>track()</script></body></html>",
    )
    parsed = parse_mail(raw)

    assert parsed.text == "Hello support,\n\nlogin fails & I get error 42.\nThanks"
    assert parsed.html is not None and "<b>error 42</b>" in parsed.html


def _alternative(plain: bytes, html: bytes) -> bytes:
    return mail(
        *BASIC,
        "MIME-Version: 1.0",
        'Content-Type: multipart/alternative; boundary="alt"',
        body=b"--alt\nContent-Type: text/plain; charset=utf-8\n\n"
        + plain
        + b"\n--alt\nContent-Type: text/html; charset=utf-8\n\n"
        + html
        + b"\n--alt--\n",
    )


def test_alternative_prefers_the_plain_part_and_keeps_the_html() -> None:
    parsed = parse_mail(_alternative(b"Plain version", b"<p>HTML <i>version</i></p>"))

    assert parsed.text == "Plain version"
    assert parsed.html == "<p>HTML <i>version</i></p>"
    assert parsed.content_type == "multipart/alternative"


def test_alternative_with_a_blank_plain_part_takes_the_html() -> None:
    parsed = parse_mail(_alternative(b"   ", b"<p>Only the HTML has words</p>"))

    assert parsed.text == "Only the HTML has words"


def test_text_parts_that_are_not_alternatives_are_joined() -> None:
    raw = mail(
        *BASIC,
        'Content-Type: multipart/mixed; boundary="mix"',
        body=b"--mix\nContent-Type: text/plain\n\nFirst part.\n"
        b"--mix\nContent-Type: image/gif\nContent-Disposition: inline\nContent-Transfer-Encoding: base64\n\n"
        b"R0lGODlhAQABAAAAACw=\n"
        b"--mix\nContent-Type: text/plain\nContent-Disposition: inline\n\nSecond part.\n--mix--\n",
    )
    parsed = parse_mail(raw)

    assert parsed.text == "First part.\nSecond part."
    assert [a.content_type for a in parsed.attachments] == ["image/gif"]


# --- charsets ------------------------------------------------------------------------------------


def _with_charset(charset: str, body: bytes, encoding: str = "8bit") -> bytes:
    return mail(
        *BASIC,
        f"Content-Type: text/plain; charset={charset}",
        f"Content-Transfer-Encoding: {encoding}",
        body=body,
    )


def test_latin1_body_8bit_and_quoted_printable() -> None:
    assert parse_mail(_with_charset("iso-8859-1", "Café crème".encode("latin-1"))).text == "Café crème"
    qp = _with_charset("ISO-8859-1", b"Caf=E9 cr=E8me=\n, fin", "quoted-printable")
    assert parse_mail(qp).text == "Café crème, fin"


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("iso-8859-15", "Prix: 5 €"),
        ("windows-1251", "Привет, мир"),
        ("koi8-r", "Привет"),
        ("iso-8859-2", "Łódź"),
    ],
)
def test_single_byte_charsets(charset: str, text: str) -> None:
    assert parse_mail(_with_charset(charset, text.encode(charset))).text == text


def test_utf8_labelled_as_a_cyrillic_charset_is_read_as_utf8() -> None:
    assert parse_mail(_with_charset("windows-1251", "Привет".encode())).text == "Привет"


def test_windows_1252_quotes_in_a_latin1_label() -> None:
    # Outlook labels cp1252 text as ISO-8859-1; its curly quotes sit where Latin-1 has controls.
    parsed = parse_mail(_with_charset("iso-8859-1", b"\x93quoted\x94 \x80 5"))

    assert parsed.text == "“quoted” € 5"


def test_shift_jis_mail_from_file() -> None:
    parsed = parse_mail((DATA / "shift_jis.eml").read_bytes())

    assert parsed.subject == "ログインできません"
    assert parsed.sender == Address("yamada@customer.example", "山田")
    assert parsed.text == "申し訳ありませんが、ログインできません。\nよろしくお願いします。"


@pytest.mark.parametrize(
    ("body", "expected"),
    [("Grüße aus Köln".encode(), "Grüße aus Köln"), ("Grüße".encode("latin-1"), "Grüße")],
    ids=["utf8-bytes", "latin1-bytes"],
)
def test_unknown_charset_is_read_as_utf8_or_windows_1252(body: bytes, expected: str) -> None:
    parsed = parse_mail(_with_charset("x-unknown", body))

    assert parsed.text == expected
    assert any("x-unknown" in defect for defect in parsed.defects)


def test_lying_charset_labels_are_seen_through() -> None:
    # Labelled UTF-8, written in Latin-1; labelled Latin-1, written in UTF-8.
    assert parse_mail(_with_charset("utf-8", "café".encode("latin-1"))).text == "café"
    assert parse_mail(_with_charset("iso-8859-1", "café".encode())).text == "café"
    assert parse_mail(_with_charset("us-ascii", "naïve".encode())).text == "naïve"


def test_damaged_utf8_keeps_its_good_characters() -> None:
    parsed = parse_mail(_with_charset("utf-8", "Grüße ".encode() + b"\xff\xfe" + " Köln".encode()))

    assert parsed.text == "Grüße \ufffd\ufffd Köln"


def test_undecodable_bytes_in_a_multibyte_charset_become_replacement_characters() -> None:
    body = "ログイン".encode("shift_jis") + b"\x81\x20" + "失敗".encode("shift_jis")
    parsed = parse_mail(_with_charset("shift_jis", body))

    assert parsed.text.startswith("ログイン")
    assert parsed.text.endswith("失敗")
    assert "\ufffd" in parsed.text


# --- headers: RFC 2047, RFC 2231, raw 8-bit ------------------------------------------------------


def test_rfc2047_subject_and_from_name() -> None:
    b_word = base64.b64encode("Árvíztűrő".encode()).decode()
    raw = mail(
        "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <andre@customer.example>",
        # B and Q words; the folding between adjacent words is not text, the space before "tail" is.
        f"Subject: =?utf-8?B?{b_word}?= =?utf-8?Q?_t=C3=BCk=C3=B6r?=",
        "\t=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?= tail",
    )
    parsed = parse_mail(raw)

    assert parsed.sender == Address("andre@customer.example", "André Pirard")
    assert parsed.subject == "Árvíztűrő tükörテスト tail"


def test_encoded_word_split_inside_a_character_is_joined() -> None:
    encoded = "こんにちは".encode()
    first, second = base64.b64encode(encoded[:4]).decode(), base64.b64encode(encoded[4:]).decode()
    parsed = parse_mail(
        mail("From: a@customer.example", f"Subject: =?utf-8?B?{first}?=", f" =?utf-8?B?{second}?=")
    )

    assert parsed.subject == "こんにちは"


def test_subject_whitespace_is_folded_and_reply_prefixes_stay() -> None:
    parsed = parse_mail(mail("From: a@customer.example", "Subject: Re:  [SP-4]\t AW:", "   the   title  "))

    assert parsed.subject == "Re: [SP-4] AW: the title"


def test_raw_8bit_headers_in_utf8_and_in_the_body_charset() -> None:
    utf8 = "From: Jörg Groß <jorg@customer.example>\nSubject: Größe ändern\n\nx".encode()
    assert parse_mail(utf8).subject == "Größe ändern"
    assert parse_mail(utf8).sender == Address("jorg@customer.example", "Jörg Groß")

    latin = (
        b"From: Jos\xe9 Mar\xeda <jose@customer.example>\n"
        b"Subject: Caf\xe9\n"
        b"Content-Type: text/plain; charset=iso-8859-1\n\nol\xe9"
    )
    parsed = parse_mail(latin)
    assert (parsed.subject, parsed.sender, parsed.text) == (
        "Café",
        Address("jose@customer.example", "José María"),
        "olé",
    )


def test_quoted_encoded_word_in_a_display_name_is_decoded() -> None:
    parsed = parse_mail(mail('From: "=?utf-8?Q?Ren=C3=A9e?=" <renee@customer.example>', "Subject: x"))

    assert parsed.sender == Address("renee@customer.example", "Renée")


def test_rfc2231_and_rfc2047_attachment_names() -> None:
    parsed = parse_mail((DATA / "rfc2231_filename.eml").read_bytes())

    assert parsed.subject == "Rechnung für März €"
    assert parsed.sender == Address("renee@customer.example", "Renée Müller")
    assert parsed.text == "Die Rechnung für März ist doppelt."
    pdf, log = parsed.attachments
    assert (pdf.filename, pdf.content_type) == ("Rechnung März € 2025.pdf", "application/pdf")
    assert pdf.payload.startswith(b"%PDF-1.4")
    assert (log.filename, log.content_type, log.payload) == (
        "prüfung.log",
        "text/plain",
        b"ERROR 42 at checkout",
    )


def test_every_header_is_kept_decoded_and_in_order() -> None:
    raw = mail(
        "From: a@customer.example",
        "Received: from one",
        "Subject: =?utf-8?Q?caf=C3=A9?=",
        "received: from two",
        "X-Custom: folded",
        "  value",
    )
    parsed = parse_mail(raw)

    assert parsed.headers["received"] == ("from one", "from two")
    assert parsed.headers["subject"] == ("café",)
    assert parsed.headers["x-custom"] == ("folded  value",)


# --- attachments ---------------------------------------------------------------------------------


def test_inline_cid_image_is_an_inline_attachment_with_its_bytes() -> None:
    parsed = parse_mail((DATA / "related_cid_image.eml").read_bytes())

    assert parsed.content_type == "multipart/related"
    assert parsed.text == "Hello,\n\nthe checkout button does nothing, see:\n\nAna"
    assert parsed.html is not None and 'src="cid:shot-1@customer.example"' in parsed.html
    (image,) = parsed.attachments
    assert image.content_id == "shot-1@customer.example"
    assert image.inline is True
    assert image.filename == "screen shot.png"
    assert image.content_type == "image/png"
    assert image.payload.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.payload == _base64_after(
        b"Content-ID: <shot-1@customer.example>\r\n\r\n", "related_cid_image.eml"
    )


def _base64_after(marker: bytes, name: str) -> bytes:
    """The bytes of the base64 block that follows ``marker`` in a test mail, decoded independently."""
    raw = (DATA / name).read_bytes()
    start = raw.index(marker) + len(marker)
    return base64.b64decode(raw[start : raw.index(b"\r\n--", start)])


def test_attached_message_is_one_attachment_and_its_text_stays_out() -> None:
    parsed = parse_mail((DATA / "forwarded_message.eml").read_bytes())

    assert parsed.text == "See the mail below, I was charged twice."
    assert "RECEIPT-LINE" not in parsed.text
    assert parsed.html is None
    (attached,) = parsed.attachments
    assert attached.content_type == "message/rfc822"
    assert attached.filename == "original.eml"
    inner = parse_mail(attached.payload)
    assert inner.subject == "Your receipt"
    assert inner.text == "RECEIPT-LINE amount 10.00 EUR"


def test_text_part_with_a_file_name_is_an_attachment() -> None:
    raw = mail(
        *BASIC,
        'Content-Type: multipart/mixed; boundary="b"',
        body=b"--b\nContent-Type: text/plain\n\nSee log.\n"
        b'--b\nContent-Type: text/plain; name="app.log"\nContent-Disposition: inline; filename="app.log"\n\n'
        b"line 1\n--b--\n",
    )
    parsed = parse_mail(raw)

    assert parsed.text == "See log."
    assert [(a.filename, a.payload, a.inline) for a in parsed.attachments] == [("app.log", b"line 1", True)]


def test_mail_that_is_only_an_attachment() -> None:
    raw = mail(
        *BASIC,
        "Content-Type: application/pdf",
        "Content-Disposition: attachment; filename=invoice.pdf",
        "Content-Transfer-Encoding: base64",
        body=base64.encodebytes(b"%PDF-1.4 tiny"),
    )
    parsed = parse_mail(raw)

    assert parsed.text == ""
    assert [(a.filename, a.payload) for a in parsed.attachments] == [("invoice.pdf", b"%PDF-1.4 tiny")]


# --- envelope forms and damaged mail -------------------------------------------------------------


def test_mbox_from_line_and_crlf_give_the_same_mail() -> None:
    lf = mail(*BASIC)
    mbox = b"From ana@customer.example Tue Mar  4 09:15:00 2025\n" + lf
    crlf = mail(*BASIC, eol=b"\r\n")

    plain, from_mbox, from_crlf = (parse_mail(raw) for raw in (lf, mbox, crlf))

    assert (plain.subject, plain.text) == ("Login fails", "Hello support,\nmy login fails.")
    for other in (from_mbox, from_crlf):
        assert (other.subject, other.sender, other.text, other.message_id, other.date) == (
            plain.subject,
            plain.sender,
            plain.text,
            plain.message_id,
            plain.date,
        )
        assert other.headers == plain.headers
        assert other.content_hash == plain.content_hash


def test_utf8_byte_order_mark_before_the_headers_is_ignored() -> None:
    parsed = parse_mail(b"\xef\xbb\xbf" + mail(*BASIC))

    assert parsed.subject == "Login fails"


@pytest.mark.parametrize("value", [None, "", "<>", "   "], ids=["absent", "empty", "brackets", "blank"])
def test_missing_or_empty_message_id_is_none(value: str | None) -> None:
    headers = ["From: a@customer.example", "Subject: x"]
    if value is not None:
        headers.append(f"Message-ID: {value}")
    assert parse_mail(mail(*headers)).message_id is None


def test_message_id_without_brackets() -> None:
    assert (
        parse_mail(mail("From: a@x.example", "Message-ID: bare.id@x.example")).message_id
        == "bare.id@x.example"
    )


@pytest.mark.parametrize(
    "date",
    ["Pn, 29 paX 2007 21:13:00 +0100", "yesterday", "Tue, 31 Feb 2021 10:00:00 +0000", "", "99999999999999"],
)
def test_bad_date_is_none(date: str) -> None:
    parsed = parse_mail(mail("From: a@customer.example", f"Date: {date}", "Subject: x"))

    assert parsed.date is None
    assert parsed.subject == "x"


def test_dates_the_strict_parser_rejects_are_still_read() -> None:
    asctime = parse_mail(mail("From: a@x.example", "Date: Tue Jun  1 10:00:00 2021"))
    zoned = parse_mail(mail("From: a@x.example", "Date: Tue, 1 Jun 2021 10.00.00 +0200"))

    assert asctime.date == datetime(2021, 6, 1, 10, 0, tzinfo=UTC)
    assert zoned.date == datetime(2021, 6, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))


def test_missing_from_gives_no_sender() -> None:
    parsed = parse_mail(mail("To: support@smilepass.example", "Subject: who am I"))

    assert parsed.sender is None
    assert parsed.subject == "who am I"
    assert parsed.text == "Hello support,\nmy login fails."


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("From: Big Bug bb@bug.example", Address("bb@bug.example", "Big Bug")),
        ("From: tim@x.example concierge@x.example", Address("tim@x.example", "")),
        ("From: <>", None),
        ("From: undisclosed-recipients:;", None),
    ],
)
def test_malformed_from_headers(header: str, expected: Address | None) -> None:
    assert parse_mail(mail(header, "Subject: x")).sender == expected


def test_garbage_bytes_after_the_headers() -> None:
    garbage = bytes(range(256)) * 4 + b"\x00\x00\xff\xfe\x1b$B"
    parsed = parse_mail(b"From: a@customer.example\nSubject: binary junk\n\n" + garbage)

    assert parsed.subject == "binary junk"
    assert isinstance(parsed.text, str)
    assert "\x00" not in parsed.text


def test_header_section_with_no_body() -> None:
    for raw in (b"From: a@customer.example\nSubject: only headers\n", b"Subject: only headers"):
        parsed = parse_mail(raw)
        assert (parsed.subject, parsed.text, parsed.html, parsed.attachments) == (
            "only headers",
            "",
            None,
            (),
        )


def test_junk_line_inside_the_headers_does_not_hide_the_rest() -> None:
    raw = mail(
        "Received: from relay.example",
        "quite Delivered-To: x@example.com",
        "From: Ana <ana@customer.example>",
        "Subject: Stop the spam",
        body=b"Body text\n",
    )
    parsed = parse_mail(raw)

    assert parsed.subject == "Stop the spam"
    assert parsed.sender == Address("ana@customer.example", "Ana")
    assert parsed.text == "Body text"
    assert any("quite Delivered-To" in defect for defect in parsed.defects)


def test_body_without_blank_line_is_not_taken_for_headers() -> None:
    parsed = parse_mail(b"From: a@customer.example\nSubject: no separator\nHello: this is the body\n")

    assert parsed.subject == "no separator"


def test_obsolete_space_before_colon() -> None:
    parsed = parse_mail(mail("From  : John Doe <jdoe@machine.example>", "Subject     : Saying Hello"))

    assert parsed.subject == "Saying Hello"
    assert parsed.sender == Address("jdoe@machine.example", "John Doe")


def test_multipart_without_boundary_keeps_its_content_as_text() -> None:
    parsed = parse_mail(mail(*BASIC, "Content-Type: multipart/mixed", body=b"Some words anyway\n"))

    assert "Some words anyway" in parsed.text


@pytest.mark.parametrize("depth", [300, 3000], ids=["deeper-than-we-walk", "deeper-than-the-parsers"])
def test_deeply_nested_multipart_does_not_crash(depth: int) -> None:
    body = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode() for i in range(depth)
    )
    body += b"Content-Type: text/plain\n\ndeep text\n"
    body += b"".join(f"--b{i}--\n".encode() for i in reversed(range(depth)))
    parsed = parse_mail(b"From: a@customer.example\nSubject: nested\n" + body)

    assert parsed.subject == "nested"
    assert parsed.sender == Address("a@customer.example", "")
    assert isinstance(parsed.text, str)
    assert any("nesting" in defect or "failed" in defect for defect in parsed.defects)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/mixed; boundary*=ut\x00f''x",
        "text/plain; charset*=ut\x00f''x",
        "text/plain; charset*=x-bogus''x; name*=\x00''%FF",
    ],
)
def test_parameters_that_break_the_parsers_still_give_a_mail(content_type: str) -> None:
    raw = b"From: a@customer.example\nSubject: hostile\nContent-Type: " + content_type.encode("latin-1")
    parsed = parse_mail(raw + b"\n\n--x\nContent-Type: text/plain\n\nstill here\n--x--\n")

    assert parsed.subject == "hostile"
    assert "still here" in parsed.text
    assert parsed.defects


@pytest.mark.parametrize(
    ("in_reply_to", "references", "expected_irt", "expected_refs"),
    [
        ("<a@x>", "<a@x> <b@x>", ("a@x",), ("a@x", "b@x")),
        ("a@x", "<a@x><b@x>", ("a@x",), ("a@x", "b@x")),
        ("<a@x> (Ana's message of Mon)", "a@x, b@x", ("a@x",), ("a@x", "b@x")),
        ("", "<a@x>\n <b@x>\n\t<c@x>", (), ("a@x", "b@x", "c@x")),
        ("<  a@x >", "junk without ids", ("a@x",), ()),
    ],
)
def test_in_reply_to_and_references_are_split_into_ids(
    in_reply_to: str, references: str, expected_irt: tuple[str, ...], expected_refs: tuple[str, ...]
) -> None:
    parsed = parse_mail(mail("From: a@x.example", f"In-Reply-To: {in_reply_to}", f"References: {references}"))

    assert parsed.in_reply_to == expected_irt
    assert parsed.references == expected_refs


def test_several_delivered_to_headers() -> None:
    raw = mail(
        "Delivered-To: support+billing@smilepass.example",
        "Delivered-To: <relay@smilepass.example>",
        "From: a@x.example",
    )

    assert parse_mail(raw).delivered_to == ("support+billing@smilepass.example", "relay@smilepass.example")


# --- not a mail ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"just text no header",
        b"\n\nbody after a blank line",
        b"From someone Mon Jan  1 00:00:00 2024\n",
        b"   ",
    ],
)
def test_bytes_without_a_header_section_are_not_a_mail(raw: bytes) -> None:
    assert looks_like_mail(raw) is False
    with pytest.raises(NotAMailError):
        parse_mail(raw)


@pytest.mark.parametrize(
    "raw",
    [b"Subject: x", b"X-Anything: 1\r\n\r\nbody", b"From a@b Mon Jan  1 00:00:00 2024\nFrom: a@b\n\nhi"],
)
def test_looks_like_mail(raw: bytes) -> None:
    assert looks_like_mail(raw) is True


# --- content hash --------------------------------------------------------------------------------


def test_content_hash_ignores_trace_headers_line_endings_and_trailing_whitespace() -> None:
    smtp_copy = mail(*BASIC, body=b"Hello support,\nmy login fails.\n")
    imap_copy = mail(
        "Return-Path: <ana@customer.example>",
        "Delivered-To: support@smilepass.example",
        "X-Original-To: support@smilepass.example",
        "Received: from mx.customer.example by mx.smilepass.example; Tue, 04 Mar 2025 09:15:02 +0100",
        "Authentication-Results: mx.smilepass.example; dkim=pass header.d=customer.example",
        "ARC-Seal: i=1; a=rsa-sha256; cv=none",
        "DKIM-Signature: v=1; a=rsa-sha256; d=customer.example; b=abc",
        *BASIC,
        body=b"Hello support,   \nmy login fails.\t\n\n\n",
        eol=b"\r\n",
    )
    mbox_copy = b"From ana@customer.example Tue Mar  4 09:15:00 2025\n" + smtp_copy

    assert content_hash(smtp_copy) == content_hash(imap_copy) == content_hash(mbox_copy)
    assert parse_mail(imap_copy).content_hash == content_hash(smtp_copy)


def test_content_hash_ignores_refolding_of_the_hashed_headers() -> None:
    one_line = mail("From: Ana <ana@customer.example>", "Subject: a long subject line")
    folded = mail("From: Ana <ana@customer.example>", "Subject: a long", "  subject   line")

    assert content_hash(one_line) == content_hash(folded)


def test_content_hash_differs_when_one_word_differs() -> None:
    original = mail(*BASIC, body=b"Hello support,\nmy login fails.\n")

    assert content_hash(original) != content_hash(mail(*BASIC, body=b"Hello support,\nmy logout fails.\n"))
    other_subject = tuple(h if not h.startswith("Subject") else "Subject: Login works" for h in BASIC)
    assert content_hash(original) != content_hash(mail(*other_subject))
    other_date = tuple(
        h if not h.startswith("Date") else "Date: Tue, 04 Mar 2025 09:16:00 +0100" for h in BASIC
    )
    assert content_hash(original) != content_hash(mail(*other_date))
    without_from = tuple(h for h in BASIC if not h.startswith("From"))
    assert content_hash(original) != content_hash(mail(*without_from))


def test_content_hash_does_not_depend_on_message_id_or_to() -> None:
    # Identity of content is From, Date, Subject and body; Message-ID is compared separately.
    other = tuple(h for h in BASIC if not h.startswith(("Message-ID", "To")))

    assert content_hash(mail(*BASIC)) == content_hash(mail(*other))


def test_content_hash_keeps_fields_apart() -> None:
    # Text moved from the subject into the body is a different mail.
    first = mail("From: a@x.example", "Subject: ab", body=b"c")
    second = mail("From: a@x.example", "Subject: a", body=b"bc")

    assert content_hash(first) != content_hash(second)


# --- HTML to text --------------------------------------------------------------------------------


def test_html_to_text_layout() -> None:
    html = (
        "<div>Line one<br>Line two</div><p>Para</p>"
        "<ul><li>apple</li><li>pear</li></ul>"
        "<p>See <a href='https://status.example/incident/7'>our status page</a> or "
        "<a href='https://smilepass.example'>https://smilepass.example</a>.</p>"
        "<h1>Heading</h1><p><strong>bold</strong> and <em>italic</em></p>"
    )
    text = html_to_text(html)

    assert text == (
        "Line one\nLine two\n\nPara\n\n* apple\n* pear\n\n"
        "See our status page <https://status.example/incident/7> or https://smilepass.example.\n\n"
        "Heading\n\nbold and italic"
    )


def test_html_to_text_marks_blockquotes_as_quotes() -> None:
    html = (
        "<p>My answer</p><div>On Mon, Ana wrote:</div>"
        "<blockquote><p>question</p><blockquote>older</blockquote></blockquote>"
    )

    assert html_to_text(html) == "My answer\n\nOn Mon, Ana wrote:\n\n> question\n>\n> > older"


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<!-- only a comment -->",
        "<div><b>unclosed <i>tags<p>para</div></span></table>",
        "a\x00b\x01c <b>bold</b> \ud800",
        "<?xml version='1.0' encoding='utf-8'?><html><body><p>x</p></body></html>",
        "<div>" * 3000 + "deep" + "</div>" * 3000,
        "<table><tr><td>a<td>b<tr><td>c</table>",
        "<<<>>>&&&;;&#xffffffff;&#0;",
    ],
)
def test_html_to_text_never_raises(html: str) -> None:
    text = html_to_text(html)

    assert isinstance(text, str)
    assert "<b>" not in text and "\x00" not in text
