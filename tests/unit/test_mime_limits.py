"""The pre-parse scan of header bytes, MIME parts and depth agrees with the email package's tree.

Each limit is tried at the mail's own figure (passes) and one below it (quarantine reason naming
the config key), on mails built with the email package, on hostile shapes the scan must survive
without recursion (thousands deep), and on the real-world corpus (nothing there is over the
defaults, and the scan agrees with the parsed tree).
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import compat32
from pathlib import Path

import pytest

from gateway.mail.mime_limits import MailOverLimit, check_mime_limits


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 262144
    max_mime_parts: int = 500
    max_mime_depth: int = 20


def shape(raw: bytes) -> tuple[int, int]:
    """(parts, depth) as the email package's parsed tree has them: every entity but the mail
    itself is a part; the mail is level 1."""
    deepest = 0
    count = 0
    todo: list[tuple[Message, int]] = [(message_from_bytes(raw, policy=compat32), 1)]
    while todo:
        entity, level = todo.pop()
        deepest = max(deepest, level)
        # The email package reads a DSN's message/delivery-status blocks as sub-messages: they
        # are header fields, not MIME parts, and the scan rightly does not count them.
        is_dsn_fields = entity.get_content_type() == "message/delivery-status"
        children = entity.get_payload() if entity.is_multipart() and not is_dsn_fields else []
        assert isinstance(children, list)
        count += len(children)
        todo.extend((child, level + 1) for child in children)
    return count, deepest


def reason(raw: bytes, limits: Limits) -> str | None:
    try:
        check_mime_limits(raw, limits)
    except MailOverLimit as exc:
        return str(exc)
    return None


def plain(subject: str = "hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Maria <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = subject
    msg.set_content("The ADD button does nothing.\n-- \nMaria\n")
    return msg


def nested(depth: int) -> bytes:
    """A text part at `depth`, inside depth-1 multipart/mixed wrappers."""
    inner: EmailMessage = plain("deep")
    for _ in range(depth - 1):
        outer = EmailMessage()
        outer.make_mixed()
        outer.attach(inner)
        inner = outer
    return inner.as_bytes()


def wide(parts: int) -> bytes:
    msg = plain("many parts")
    for index in range(parts - 1):
        msg.add_attachment(
            f"log line {index}\n".encode(), maintype="text", subtype="plain", filename=f"{index}.log"
        )
    return msg.as_bytes()


def with_attached_message() -> bytes:
    """A forward: a multipart with a message/rfc822 whose own body is multipart."""
    forwarded = plain("original")
    forwarded.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="a.png")
    msg = plain("Fwd: original")
    msg.add_attachment(forwarded)
    return msg.as_bytes()


SAMPLES = {
    "plain": plain().as_bytes(),
    "nested 7": nested(7),
    "wide 30": wide(30),
    "forward": with_attached_message(),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_the_scan_counts_what_the_parser_builds(name: str) -> None:
    raw = SAMPLES[name]
    parts, depth = shape(raw)
    assert reason(raw, Limits(max_mime_parts=parts, max_mime_depth=depth)) is None
    if parts:
        over = reason(raw, Limits(max_mime_parts=parts - 1))
        assert over == f"over limits.max_mime_parts: more than {parts - 1} MIME parts"
    if depth > 1:
        over = reason(raw, Limits(max_mime_depth=depth - 1))
        assert over == f"over limits.max_mime_depth: MIME parts nested {depth} deep (limit {depth - 1})"


def test_header_bytes_count_the_header_section_before_the_blank_line() -> None:
    msg = plain()
    msg["X-Padding"] = "x" * 5000
    raw = msg.as_bytes()
    head = raw.split(b"\n\n", 1)[0] + b"\n"
    assert reason(raw, Limits(max_header_bytes=len(head))) is None
    assert reason(raw, Limits(max_header_bytes=len(head) - 1)) == (
        f"over limits.max_header_bytes: the header section is {len(head)} bytes (limit {len(head) - 1})"
    )
    # A long body is not a long header.
    assert reason(plain().as_bytes() + b"y" * 100_000, Limits(max_header_bytes=1000)) is None


def test_a_parts_huge_header_section_is_over_the_limit_too() -> None:
    msg = plain()
    msg.add_attachment(b"data", maintype="application", subtype="octet-stream", filename="f" * 3000 + ".bin")
    assert "a MIME part's header section is" in (reason(msg.as_bytes(), Limits(max_header_bytes=2000)) or "")


def test_thousands_deep_is_refused_without_recursion() -> None:
    boundaries = [f"b{level}" for level in range(5000)]
    head = b"From: a@example.org\r\nSubject: deep\r\n"
    lines = [head + f'Content-Type: multipart/mixed; boundary="{boundaries[0]}"\r\n\r\n'.encode()]
    for level, boundary in enumerate(boundaries[1:]):
        lines.append(
            f'--{boundaries[level]}\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode()
        )
    raw = b"".join(lines) + b"--b4999\r\n\r\ntext\r\n"
    assert reason(raw, Limits()) == "over limits.max_mime_depth: MIME parts nested 21 deep (limit 20)"
    # 5000 deep, and no RecursionError
    assert reason(raw, Limits(max_mime_depth=100_000, max_mime_parts=100_000)) is None


def test_boundaries_in_text_and_outer_delimiters_closing_inner_parts() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b'preamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n'
        b"--inner\r\n\r\nplain text\r\n-- \r\nsignature, not a boundary\r\n--innerly not\r\n"
        b"--outer\r\n\r\nsecond outer part: the inner multipart was never closed\r\n--outer--\r\n"
        b"--outer\r\n\r\nepilogue text that only looks like a delimiter\r\n"
    )
    # outer (level 1) > alternative (2) > text (3); second text (2): 3 parts, 3 deep
    assert reason(raw, Limits(max_mime_parts=3, max_mime_depth=3)) is None
    assert reason(raw, Limits(max_mime_parts=2)) is not None
    assert reason(raw, Limits(max_mime_depth=2)) is not None


def test_an_rfc_2231_boundary_and_a_folded_content_type_are_read_as_the_parser_reads_them() -> None:
    raw = (
        b"From: a@example.org\r\n"
        b'Content-Type: multipart/mixed;\r\n\tboundary*0="abc";\r\n boundary*1="def"\r\n\r\n'
        b"--abcdef\r\nContent-Type: text/plain\r\n\r\none\r\n--abcdef\r\n\r\ntwo\r\n--abcdef--\r\n"
    )
    assert shape(raw) == (2, 2)
    assert reason(raw, Limits(max_mime_parts=2, max_mime_depth=2)) is None
    assert reason(raw, Limits(max_mime_parts=1)) is not None


@pytest.mark.corpus
def test_no_corpus_mail_is_over_the_defaults_and_the_scan_agrees_with_the_tree(corpus_dir: Path) -> None:
    files = [
        p
        for p in sorted(corpus_dir.rglob("*"))
        if p.is_file() and p.suffix in (".eml", "") and p.stat().st_size
    ]
    assert len(files) > 100
    checked = 0
    for path in files:
        raw = path.read_bytes()
        assert reason(raw, Limits()) is None, path
        parts, depth = shape(raw)
        if parts and reason(raw, Limits(max_mime_parts=parts, max_mime_depth=depth)) is None:
            checked += 1
            assert reason(raw, Limits(max_mime_parts=parts - 1)) is not None, path
    assert checked > 20  # multipart mails whose shape the scan and the tree agree on
