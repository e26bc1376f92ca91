"""A MIME parameter given both whole and in RFC 2231 sections (which makes the email package raise
TypeError) is reduced to the form given first before the mail is parsed; every other mail's bytes
are left as they are (gateway/mail/rfc2231_repair.py)."""

from __future__ import annotations

import email
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from gateway.mail.mime_limits import check_mime_limits
from gateway.mail.parse import parse_mail
from gateway.mail.rfc2231_repair import repair_mixed_sections

NAMES = st.sampled_from(["boundary", "name", "filename", "charset", "x-extra"])
VALUES = st.text(alphabet="abcdefgh0123", min_size=1, max_size=6)


@st.composite
def parameter(draw: st.DrawFn) -> str:
    """One parameter in any of the forms: plain, whole extended, a section (extended or not)."""
    name, value = draw(NAMES), draw(VALUES)
    form = draw(st.sampled_from(["plain", "whole", "section", "extended-section"]))
    quoted = draw(st.booleans())
    shown = f'"{value}"' if quoted and form != "whole" else value
    if form == "plain":
        return f"{name}={shown}"
    if form == "whole":
        return f"{name}*=utf-8''{value}"
    number = draw(st.integers(min_value=0, max_value=2))
    return f"{name}*{number}*=utf-8''{value}" if form == "extended-section" else f"{name}*{number}={shown}"


def field(parameters: list[str], fold: bool) -> bytes:
    separator = ";\r\n " if fold else "; "
    return ("Content-Disposition: attachment" + "".join(separator + p for p in parameters)).encode()


def params_raise(raw: bytes) -> bool:
    message = email.message_from_bytes(raw)
    try:
        message.get_params(header="content-disposition")
    except TypeError:
        return True
    return False


@given(st.lists(parameter(), min_size=1, max_size=6), st.booleans())
def test_after_the_repair_every_parameter_reads_and_a_readable_field_is_untouched(
    parameters: list[str], fold: bool
) -> None:
    raw = b"From: a@example.com\r\n" + field(parameters, fold) + b"\r\n\r\nbody\r\n"
    defects: list[str] = []
    repaired = repair_mixed_sections(raw, defects)
    assert not params_raise(repaired)
    if not params_raise(raw):  # what the package reads is never changed
        assert repaired is raw and defects == []


@given(VALUES, VALUES, st.booleans())
def test_the_form_given_first_is_kept(first: str, second: str, whole_first: bool) -> None:
    whole, sections = f"filename*=utf-8''{first}", f"filename*0={second}; filename*1=x"
    parameters = [whole, sections] if whole_first else [sections, whole]
    raw = b"From: a@example.com\r\n" + field(parameters, fold=True) + b"\r\n\r\nbody\r\n"
    defects: list[str] = []
    read = email.message_from_bytes(repair_mixed_sections(raw, defects)).get_filename()
    assert read == (first if whole_first else second + "x")
    assert len(defects) == 1 and "filename" in defects[0]


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 65536
    max_mime_parts: int = 100
    max_mime_depth: int = 10


MAIL = (
    b"From: Maria <maria@customer.example>\r\n"
    b"To: support@smilepass.example\r\n"
    b"Subject: Invoice attached\r\n"
    b"Message-ID: <rfc2231@customer.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary*=utf-8''sep; boundary*0=other\r\n"
    b"\r\n"
    b"--sep\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"The invoice total is wrong.\r\n"
    b"--sep\r\n"
    b"Content-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename*0=bill; filename*=utf-8''x.pdf; filename*1=.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--sep--\r\n"
)


def test_such_a_mail_is_read_whole_with_its_text_its_file_and_a_defect() -> None:
    check_mime_limits(MAIL, Limits())
    parsed = parse_mail(MAIL)
    assert parsed.text.strip() == "The invoice total is wrong."
    assert [attachment.filename for attachment in parsed.attachments] == ["bill.pdf"]
    assert sum("RFC 2231" in defect for defect in parsed.defects) == 2
    try:  # the email package itself cannot read it
        email.message_from_bytes(MAIL)
    except TypeError:
        pass
    else:  # a fixed email package would make this repair unnecessary, not wrong
        raise AssertionError("the email package reads this mail now; the repair may be retired")
