"""The MIME-limit scan reads a part's content type without parsing its whole header section when it
can (gateway.mail.mime_limits._content_type_fields, _simple_content_type): the content type and
boundary must be what the email package reads from the whole section, whatever the section holds."""

from __future__ import annotations

from collections.abc import Callable

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
        b"Content-Type: Message/Delivery-Status",
        b"Content-Type: text/plain; BOUNDARY=odd",
        b"Content-Type: text/plain; boundary*0=a",
        b"Content-Type:   Image/PNG ; name=x.png",
        b"Content-Type: text/",
        b"Content-Type: a/b/c",
        b"Content-Type: plain",
        b"Content-Type: ;",
        b"Content-Type:",
        b"Content-Type: \t",
        b"Content-Type: text/plain; name=caf\xe9",
        b"X-Note: content-type here",
        b"Subject: hello",
        b"From: a@b.example",
        b"From a@b.example Mon Jan  1 00:00:00 2026",
        b":no name",
        b" continued",
        b"\tcontinued; boundary=tab",
        b" plain; x=1",
        b" /x",
        b"",
        b"no colon at all",
        b"Caf\xe9: 8-bit",
        b"Received: from x\r by y",
    ]
)
_ENDINGS = st.sampled_from([b"\n", b"\r\n", b"\r", b""])


def _whole_section(head: bytes) -> tuple[str, bytes | None]:
    """What `_content_type` gave before: the whole section through the email package."""
    if b"content-type" not in head.lower():
        return "text/plain", None
    message = mime_limits._HEADER_PARSER.parsebytes(head + b"\n")
    boundary = message.get_boundary()
    if boundary is None:
        return message.get_content_type(), None
    try:
        return message.get_content_type(), boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return message.get_content_type(), boundary.encode("utf-8", "surrogateescape")


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(_LINES, _ENDINGS), max_size=8))
@example([(b"Subject: x", b"\n"), (b"Content-Type: multipart/mixed; boundary=abc", b"\n")])
@example([(b"Content-Type: text/", b"\r\n"), (b" plain; x=1", b"\r\n")])
def test_the_content_type_is_what_the_whole_section_gives(lines: list[tuple[bytes, bytes]]) -> None:
    head = b"".join(line + ending for line, ending in lines)
    assert _outcome(mime_limits._content_type, head) == _outcome(_whole_section, head)


def _outcome(read: Callable[[bytes], tuple[str, bytes | None]], head: bytes) -> object:
    """The answer, or the type of what was raised (the email package raises TypeError on some RFC
    2231 boundaries, e.g. `boundary*=` and `boundary*0=` together; a failure must stay one)."""
    try:
        return read(head)
    except Exception as error:
        return type(error)


def test_a_plain_section_is_read_without_the_parser() -> None:
    head = b"Subject: x\r\nContent-Type: Text/Plain;\r\n charset=utf-8\r\nTo: y\r\n"
    assert mime_limits._content_type_fields(head) == [b"Content-Type: Text/Plain;\r\n charset=utf-8\r\n"]
    assert mime_limits._simple_content_type([b"Content-Type: Text/Plain;\r\n charset=utf-8\r\n"]) == (
        "text/plain",
        None,
    )
    multipart = b"Content-Type: multipart/mixed;\r\n boundary=abc\r\n"
    assert mime_limits._simple_content_type([multipart]) is None  # the parser reads the boundary
    assert mime_limits._content_type(b"To: y\r\n" + multipart) == ("multipart/mixed", b"abc")
