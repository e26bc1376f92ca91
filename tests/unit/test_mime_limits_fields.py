"""The MIME-limit scan reads a part's content type from its Content-Type fields alone when the header
section is plain (gateway.mail.mime_limits._content_type_fields): the content type and boundary must
be what parsing the whole section gives, whatever the section holds."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.mail import mime_limits

_LINES = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=abc",
        b'Content-Type: multipart/alternative;\r\n boundary="x y"',
        b"content-type: text/html; charset=utf-8",
        b"CONTENT-TYPE:multipart/related; boundary*=UTF-8''caf%C3%A9",
        b"Content-Type : multipart/mixed; boundary=spaced",
        b"Content-Type-X: multipart/mixed; boundary=other",
        b"Content-Type: message/rfc822",
        b"Content-Type:",
        b"X-Note: content-type here",
        b"Subject: hello",
        b"From: a@b.example",
        b"From a@b.example Mon Jan  1 00:00:00 2026",
        b":no name",
        b" continued",
        b"\tcontinued; boundary=tab",
        b"",
        b"no colon at all",
        b"Caf\xe9: 8-bit",
        b"Received: from x\r by y",
    ]
)
_ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r", b""])


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(_LINES, _ENDINGS), max_size=8))
@example([(b"Subject: x", b"\n"), (b"Content-Type: multipart/mixed; boundary=abc", b"\n")])
def test_the_fields_alone_give_what_the_whole_section_gives(lines: list[tuple[bytes, bytes]]) -> None:
    head = b"".join(line + ending for line, ending in lines)
    if b"content-type" not in head.lower():
        return
    whole = mime_limits._HEADER_PARSER.parsebytes(head + b"\n")
    expected = (whole.get_content_type(), whole.get_boundary())
    fields = mime_limits._content_type_fields(head)
    if fields is None:
        return  # the caller parses the whole section
    alone = mime_limits._HEADER_PARSER.parsebytes(fields + b"\n")
    assert (alone.get_content_type(), alone.get_boundary()) == expected


def test_a_plain_section_is_read_from_its_fields() -> None:
    head = b"Subject: x\r\nContent-Type: multipart/mixed;\r\n boundary=abc\r\nTo: y\r\n"
    assert mime_limits._content_type_fields(head) == b"Content-Type: multipart/mixed;\r\n boundary=abc\r\n"
    assert mime_limits._content_type(head) == ("multipart/mixed", b"abc")
