"""Outgoing headers (SPEC §7): what a notification carries, and that no ticket text can add a header
or a recipient to it."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses

import pytest

from gateway.domain import Address
from gateway.notify.message import (
    AUTO_REPLIED,
    Headers,
    UnsafeAddress,
    build_message,
    new_message_id,
    one_line,
    subject_for,
)
from gateway.notify.render import Rendered

RENDERED = Rendered(text="-- reply above this line --\n\nHello\n", html="<p>Hello</p>\n")


def headers(**changes: object) -> Headers:
    values: dict[str, object] = {
        "sender": Address("support@smilepass.example", "SmilePass Support"),
        "to": Address("maria@customer.example", "Maria Lopez"),
        "reply_to": "support+SP-42.abcdefghijklmnop@smilepass.example",
        "subject": subject_for("SP-42", "Payment plan ADD button does nothing"),
        "message_id": new_message_id(ref="SP-42", outbox_id=17, domain="smilepass.example"),
        "in_reply_to": "original@customer.example",
        "references": ("original@customer.example", "tg.SP-42@smilepass.example"),
        "auto_submitted": AUTO_REPLIED,
    }
    values.update(changes)
    return Headers(**values)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def recipients(msg: EmailMessage) -> list[str]:
    values = [str(v) for name in ("to", "cc", "bcc") for v in (msg.get_all(name) or [])]
    return [address for _, address in getaddresses(values)]


def test_a_notification_carries_every_header_spec_7_names() -> None:
    raw = build_message(headers(), RENDERED)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF throughout
    msg = parse(raw)
    assert msg["Subject"] == "[SP-42] Payment plan ADD button does nothing"
    assert msg["Message-ID"].startswith("<tg.SP-42.o17.") and msg["Message-ID"].endswith(
        "@smilepass.example>"
    )
    assert msg["In-Reply-To"] == "<original@customer.example>"
    assert msg["References"].split() == ["<original@customer.example>", "<tg.SP-42@smilepass.example>"]
    assert msg["Reply-To"].addresses[0].addr_spec == "support+SP-42.abcdefghijklmnop@smilepass.example"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["From"].addresses[0].display_name == "SmilePass Support"
    assert recipients(msg) == ["maria@customer.example"]
    assert msg.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "title",
    [
        "Hello\r\nBcc: victim@evil.example",
        "Hello\nBcc: victim@evil.example",
        "Hello\rTo: victim@evil.example",
        "Hello\r\n\r\nInjected body",
        "Hello\u2028Bcc: victim@evil.example",
        "Hello\x00\x0bBcc: victim@evil.example",
    ],
)
def test_a_title_with_line_breaks_cannot_inject_a_header_or_a_recipient(title: str) -> None:
    msg = parse(build_message(headers(subject=subject_for("SP-42", title)), RENDERED))
    assert msg["Bcc"] is None
    assert recipients(msg) == ["maria@customer.example"]
    assert msg["Subject"].startswith("[SP-42] Hello ")
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg.get_content_type() == "multipart/alternative"


@pytest.mark.parametrize(
    "name",
    [
        "Mallory\r\nBcc: victim@evil.example",
        "Evil, <victim@evil.example>",  # a comma and an address inside the name
        '"Mallory" <victim@evil.example>, x',
        "Mallory\nCc: victim@evil.example",
    ],
)
def test_a_display_name_can_never_become_a_second_recipient(name: str) -> None:
    msg = parse(build_message(headers(to=Address("mallory@customer.example", name)), RENDERED))
    assert recipients(msg) == ["mallory@customer.example"]
    assert msg["Bcc"] is None and msg["Cc"] is None


@pytest.mark.parametrize(
    "address",
    [
        "victim@evil.example\r\nBcc: x@evil.example",
        "a@b.example, c@d.example",
        "<a@b.example>",
        "no-at-sign",
        "",
    ],
)
def test_an_address_that_is_not_one_recipient_is_refused(address: str) -> None:
    with pytest.raises(UnsafeAddress):
        build_message(headers(to=Address(address, "x")), RENDERED)


def test_ids_from_a_mail_that_are_not_safe_are_left_out_of_the_threading_headers() -> None:
    msg = parse(
        build_message(
            headers(
                in_reply_to="evil>\r\nBcc: x@evil.example", references=("a b@c", "good@customer.example")
            ),
            RENDERED,
        )
    )
    assert msg["In-Reply-To"] is None
    assert msg["References"] == "<good@customer.example>"
    assert msg["Bcc"] is None


def test_one_line_folds_every_kind_of_line_break() -> None:
    assert one_line(" a\r\nb\rc\nd\u2028e\x85f\tg ") == "a b c d e f g"


def test_a_non_ascii_title_and_name_are_encoded_not_broken() -> None:
    msg = parse(
        build_message(
            headers(
                subject=subject_for("SP-42", "Zahlung fehlgeschlagen – Größe"),
                to=Address("maria@customer.example", "María López"),
            ),
            RENDERED,
        )
    )
    assert msg["Subject"] == "[SP-42] Zahlung fehlgeschlagen – Größe"
    assert msg["To"].addresses[0].display_name == "María López"
