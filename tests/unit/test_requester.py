"""Who the requester is (SPEC §1): From, else Sender, Reply-To, the envelope sender, else unknown@invalid."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import Envelope
from gateway.mail.parse import parse_mail
from gateway.mail.requester import UNKNOWN_SENDER, Requester, find_requester

PIPE = Envelope(mail_from="", rcpt_tos=("support@smilepass.example",), source="pipe")


def requester(*headers: bytes, envelope: Envelope = PIPE) -> Requester:
    raw = b"\r\n".join([*headers, b"To: support@smilepass.example", b"Subject: Card declined", b"", b"Hi"])
    return find_requester(parse_mail(raw), envelope)


def test_an_undotted_host_is_an_address() -> None:
    assert requester(b"From: root@localhost").address.address == "root@localhost"


def test_a_good_from_wins() -> None:
    found = requester(b"From: Maria Lopez <maria@customer.example>", b"Sender: list@lists.example")
    assert (found.address.address, found.address.name, found.source) == (
        "maria@customer.example",
        "Maria Lopez",
        "From",
    )


def test_no_from_takes_sender() -> None:
    found = requester(b"Sender: Maria Lopez <maria@customer.example>")
    assert (found.address.address, found.source) == ("maria@customer.example", "Sender")


def test_empty_from_takes_sender() -> None:
    found = requester(b"From: <>", b"Sender: maria@customer.example")
    assert (found.address.address, found.source) == ("maria@customer.example", "Sender")


def test_display_name_only_takes_reply_to_and_keeps_the_name() -> None:
    found = requester(b"From: Maria Lopez", b"Reply-To: maria@customer.example")
    assert found.address.address == "maria@customer.example"
    assert found.address.name == "Maria Lopez"
    assert found.source == "Reply-To"


def test_a_quoted_address_in_the_name_is_not_the_address() -> None:
    found = requester(b'From: "a@b" <>', b"Reply-To: maria@customer.example")
    assert (found.address.address, found.source) == ("maria@customer.example", "Reply-To")
    assert "@" not in found.address.name


def test_an_unparseable_first_from_before_a_good_second_one() -> None:
    found = requester(b"From: <<<not an address", b"From: Maria <maria@customer.example>")
    assert (found.address.address, found.source) == ("maria@customer.example", "From")


def test_garbage_bytes_in_from_fall_through_to_sender() -> None:
    found = requester(b"From: \xff\xfe\x81\x00 \xc3(", b"Sender: maria@customer.example")
    assert (found.address.address, found.source) == ("maria@customer.example", "Sender")


def test_the_envelope_sender_over_smtp() -> None:
    smtp = Envelope(mail_from="maria@customer.example", rcpt_tos=(), source="smtp")
    found = requester(b"From: Maria Lopez", envelope=smtp)
    assert (found.address.address, found.address.name, found.source) == (
        "maria@customer.example",
        "Maria Lopez",
        "envelope",
    )


def test_return_path_is_the_envelope_sender_of_piped_mail() -> None:
    found = requester(b"Return-Path: <maria@customer.example>", b"From: <>")
    assert (found.address.address, found.source) == ("maria@customer.example", "envelope")


def test_a_null_envelope_sender_is_nobody() -> None:
    smtp = Envelope(mail_from="", rcpt_tos=(), source="smtp")
    found = requester(b"From: Maria Lopez", envelope=smtp)
    assert found.address.address == UNKNOWN_SENDER
    assert found.address.name == "Maria Lopez"
    assert "null envelope sender" in found.reason
    assert "'Maria Lopez'" in found.reason


def test_nobody_named_gives_unknown_with_the_reason() -> None:
    found = requester(b"X-Note: nothing here")
    assert found.address.address == UNKNOWN_SENDER
    assert found.source == ""
    assert found.reason.startswith("no usable address: no From")


@pytest.mark.parametrize(
    "value", [b"maria at customer.example", b"<maria>", b"@customer.example", b"maria@", b"maria@-.example"]
)
def test_things_that_are_not_addresses(value: bytes) -> None:
    assert requester(b"From: " + value).address.address == UNKNOWN_SENDER


# --- property: broken From headers in any order never hide a good Sender or Reply-To --------------------

_BROKEN_FROM = [
    b"From: <>",
    b"From: Maria Lopez",
    b'From: "a@b" <>',
    b"From: <<<garbage",
    b"From: \xff\xfe\x81",
    b"From: ",
    b"From: maria at customer.example",
    b'From: "Lopez, Maria"',
]
_GOOD = [
    b"Sender: Maria Lopez <maria@customer.example>",
    b"Reply-To: maria@customer.example",
    b"Reply-To: <maria@customer.example>, other@else.example",
]
_NOISE = [b"X-Mailer: Something 1.0", b"Date: Mon, 30 Nov 2026 09:14:00 +0100", b"Sender: <>"]


@settings(max_examples=150, deadline=None)
@given(
    broken=st.lists(st.sampled_from(_BROKEN_FROM), max_size=3),
    good=st.sampled_from(_GOOD),
    noise=st.lists(st.sampled_from(_NOISE), max_size=2),
    order=st.randoms(use_true_random=False),
)
def test_any_broken_from_with_a_good_sender_or_reply_to_gives_the_good_address(
    broken: list[bytes], good: bytes, noise: list[bytes], order: object
) -> None:
    headers = [*broken, good, *noise]
    order.shuffle(headers)  # type: ignore[attr-defined]
    found = requester(*headers)
    assert found.address.address == "maria@customer.example"
    assert found.source in ("Sender", "Reply-To")


# --- an encoded word is display-name text, never the address ------------------------------------------


@pytest.mark.parametrize(
    "from_",
    [
        b"From: =?utf-8?q?Mallory=0D=0ABcc=3A_victim=40evil=2Eexample?= <mallory@customer.example>",
        b"From: =?utf-8?q?=3Cvictim=40evil=2Eexample=3E?= <mallory@customer.example>",
        b"From: =?utf-8?b?dmljdGltQGV2aWwuZXhhbXBsZQ==?= <mallory@customer.example>",
    ],
)
def test_an_address_inside_an_encoded_word_is_not_the_requester(from_: bytes) -> None:
    assert requester(from_).address.address == "mallory@customer.example"


def test_a_from_that_is_only_an_encoded_address_names_nobody() -> None:
    found = requester(b"From: =?utf-8?q?victim=40evil=2Eexample?=", b"Sender: maria@customer.example")
    assert (found.address.address, found.source) == ("maria@customer.example", "Sender")
