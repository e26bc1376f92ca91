"""Raw 8-bit headers (SPEC §1): read in the charset the mail declares, else a detected one, never
blindly as Latin-1. Subject, From display name and attachment file names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mail.parse import parse_mail


def raw_mail(subject: str, name: str, charset: str, *, declare: str | None, body: str | None = None) -> bytes:
    """A mail whose Subject and From name are raw bytes in `charset`; `declare` is what it says it is."""
    head = (
        f"From: {name} <sender@customer.example>\r\n"
        "To: support@smilepass.example\r\n"
        f"Subject: {subject}\r\n"
        "Message-ID: <raw-8bit@customer.example>\r\n"
    ).encode(charset)
    if declare is not None:
        head += f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={declare}\r\n".encode()
    return head + b"\r\n" + (body if body is not None else subject).encode(charset) + b"\r\n"


# Texts written for these tests, as customers of each script would write a subject and sign a mail.
CASES = [
    ("发票金额不对", "李雷", "gb2312"),
    ("无法完成付款，请尽快处理", "韩梅梅", "gbk"),
    ("請款單有錯誤", "陳大文", "big5"),
    ("カードで支払えません", "佐藤花子", "shift_jis"),
    ("ログインできない件", "鈴木一郎", "euc_jp"),
    ("카드 결제가 안 됩니다", "이영희", "euc_kr"),
    ("Не приходит счёт на оплату", "Ольга Смирнова", "cp1251"),
    ("Деньги списали дважды", "Сергей Кузнецов", "koi8_r"),
    ("Η κάρτα απορρίφθηκε", "Γιώργος Παπαδόπουλος", "iso8859_7"),
    ("Nie mogę zapłacić fakturą", "Łukasz Wiśniewski", "iso8859_2"),
    ("Échec du paiement à la caisse", "Hélène Dubois", "latin_1"),
    ("Zahlung für Bestellung fehlgeschlagen", "Jörg Schäfer", "cp1252"),
    ("Ödeme sayfası açılmıyor", "Ayşe Yılmaz", "iso8859_9"),
    ("Оплата не проходить", "Тарас Шевченко", "koi8_u"),
]


@pytest.mark.parametrize(("subject", "name", "charset"), CASES)
def test_declared_charset_reads_raw_header_bytes(subject: str, name: str, charset: str) -> None:
    mail = parse_mail(raw_mail(subject, name, charset, declare=charset))
    assert mail.subject == subject
    assert mail.sender is not None and mail.sender.name == name


@pytest.mark.parametrize(("subject", "name", "charset"), CASES)
def test_undeclared_raw_header_bytes_are_detected(subject: str, name: str, charset: str) -> None:
    mail = parse_mail(raw_mail(subject, name, charset, declare=None))
    assert mail.subject == subject
    assert mail.sender is not None and mail.sender.name == name
    assert mail.text.strip() == subject  # the undeclared body is read in the same charset


NOT_WESTERN = [case for case in CASES if case[2] not in ("latin_1", "cp1252")]


@pytest.mark.parametrize(("subject", "name", "charset"), NOT_WESTERN)
def test_an_ascii_declaration_says_nothing_about_raw_bytes(subject: str, name: str, charset: str) -> None:
    mail = parse_mail(raw_mail(subject, name, charset, declare="us-ascii"))
    assert mail.subject == subject


def test_raw_bytes_that_do_not_fit_the_declared_utf8_are_detected() -> None:
    subject = "Не приходит счёт на оплату"
    mail = parse_mail(raw_mail(subject, "Ольга", "cp1251", declare="utf-8"))
    assert mail.subject == subject
    assert mail.text.strip() == subject


def test_utf8_without_rfc2047_is_utf8_whatever_the_declaration() -> None:
    mail = parse_mail(raw_mail("付款失败 Zahlung für März", "Jörg", "utf-8", declare="iso-8859-1"))
    assert mail.subject == "付款失败 Zahlung für März"


def test_a_relay_that_read_big5_as_latin1_is_undone_by_the_declared_charset() -> None:
    original = "請款單有錯誤，請盡快處理"
    misread = original.encode("big5").decode("latin-1")  # what the relay thought it saw
    raw = (
        b"From: sender@customer.example\r\nSubject: "
        + misread.encode("utf-8")
        + b"\r\nContent-Type: text/plain; charset=big5\r\n\r\n"
        + original.encode("big5")
    )
    assert parse_mail(raw).subject == original


def test_umlauts_in_utf8_under_a_cjk_declaration_stay() -> None:
    raw = "Subject: Grüße\r\nContent-Type: text/plain; charset=big5\r\n\r\nx".encode()
    assert parse_mail(raw).subject == "Grüße"


FILE_NAMES = [("发票金额.pdf", "gb2312"), ("請求書の控え.pdf", "shift_jis"), ("счёт за ноябрь.pdf", "cp1251")]


@pytest.mark.parametrize(("filename", "charset"), FILE_NAMES)
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_raw_8bit_attachment_file_names(filename: str, charset: str, declared: bool) -> None:
    text_type = f"text/plain; charset={charset}" if declared else "text/plain"
    raw = (
        b"From: a@customer.example\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        + f"Content-Type: {text_type}\r\n\r\nsee attached\r\n--b\r\n".encode()
        + b"Content-Type: application/pdf\r\n"
        + f'Content-Disposition: attachment; filename="{filename}"\r\n'.encode(charset)
        + b"\r\n%PDF-1.4\r\n--b--\r\n"
    )
    [attachment] = parse_mail(raw).attachments
    assert attachment.filename == filename


# --- property: any text a charset can write, declared, comes back exactly ------------------------------

_ALPHABETS = {
    "gb2312": "发票金额不对付款失败请处理账户登录问题谢谢您好",
    "shift_jis": "カードで支払えませんログインできない件請求書",
    "euc_kr": "카드결제가안됩니다로그인문의감사합니다",
    "cp1251": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ",
    "koi8_r": "абвгдежзийклмнопрстуфхцчшщыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ",
    "iso8859_7": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
}


@st.composite
def text_in(draw: st.DrawFn) -> tuple[str, str]:
    charset = draw(st.sampled_from(sorted(_ALPHABETS)))
    words = draw(
        st.lists(st.text(alphabet=_ALPHABETS[charset], min_size=1, max_size=8), min_size=1, max_size=5)
    )
    return charset, " ".join(words)


@settings(max_examples=120, deadline=None)
@given(case=text_in())
def test_any_declared_text_comes_back_exactly(case: tuple[str, str]) -> None:
    charset, text = case
    mail = parse_mail(raw_mail(text, text[:20], charset, declare=charset))
    assert mail.subject == text


def test_a_utf16_body_says_nothing_about_the_headers() -> None:
    raw = (
        b"From: Maria <maria@customer.example>\r\nSubject: Card declined\r\n"
        b"Content-Type: text/plain; charset=utf-16\r\n\r\n" + "Hallo".encode("utf-16")
    )
    mail = parse_mail(raw)
    assert mail.subject == "Card declined"
    assert mail.sender is not None and mail.sender.address == "maria@customer.example"


def test_a_bom_like_pair_of_bytes_in_one_header_leaves_the_others_readable() -> None:
    raw = b"From: \xff\xfe\x81\r\nSender: maria@customer.example\r\nSubject: Card declined\r\n\r\nHi\r\n"
    mail = parse_mail(raw)
    assert mail.header("sender") == "maria@customer.example"
    assert mail.subject == "Card declined"
