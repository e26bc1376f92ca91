"""Reply and VERP addresses: minted and verified in one place, unguessable, not movable (SPEC §4.1, §7)."""

from __future__ import annotations

import pytest

from gateway.addresses import GatewayAddresses
from gateway.reply_address import (
    AUDIENCE_REQUESTER,
    AUDIENCE_STAFF,
    ReplyToken,
    parse_reply_detail,
    parse_verp_detail,
    reply_address,
    verp_address,
)

SECRET = "unit-test-secret-0123456789"
OURS = GatewayAddresses(["support@smilepass.example"])


def detail_of(address: str) -> str:
    match = OURS.match(address)
    assert match is not None and match.detail is not None
    return match.detail


def test_a_reply_address_is_a_sub_address_of_ours_that_verifies_to_its_ticket_and_audience() -> None:
    address = reply_address(
        "support@smilepass.example", prefix="SP", ticket_id=42, audience=AUDIENCE_REQUESTER, secret=SECRET
    )
    assert address.startswith("support+SP-42.") and address.endswith("@smilepass.example")
    token = address.partition(".")[2].partition("@")[0]
    assert len(token) >= 16  # base32: at least 80 bits
    assert parse_reply_detail(detail_of(address), prefix="SP", secret=SECRET) == ReplyToken(42, "requester")


def test_staff_and_requester_tokens_differ_and_each_verifies_as_its_own_audience() -> None:
    requester, staff = (
        reply_address("support@smilepass.example", prefix="SP", ticket_id=7, audience=a, secret=SECRET)
        for a in (AUDIENCE_REQUESTER, AUDIENCE_STAFF)
    )
    assert requester != staff
    assert parse_reply_detail(detail_of(staff), prefix="SP", secret=SECRET) == ReplyToken(7, AUDIENCE_STAFF)


@pytest.mark.parametrize(
    "forge",
    [
        lambda d: d.replace("SP-42.", "SP-43."),  # moved to another ticket
        lambda d: d[:-1] + ("a" if d[-1] != "a" else "b"),  # one character changed
        lambda d: d.replace("SP-", "TG-"),  # another deployment's prefix
        lambda d: d.split(".")[0],  # no token
        lambda d: d + "x",  # too long
        lambda d: "SP-42.",
        lambda d: "",
    ],
)
def test_a_forged_moved_or_malformed_detail_is_refused(forge) -> None:  # type: ignore[no-untyped-def]
    address = reply_address(
        "support@smilepass.example", prefix="SP", ticket_id=42, audience=AUDIENCE_STAFF, secret=SECRET
    )
    assert parse_reply_detail(forge(detail_of(address)), prefix="SP", secret=SECRET) is None


def test_another_secret_does_not_verify_and_case_folding_by_an_mta_does_no_harm() -> None:
    address = reply_address(
        "support@smilepass.example", prefix="SP", ticket_id=5, audience=AUDIENCE_REQUESTER, secret=SECRET
    )
    detail = detail_of(address)
    assert parse_reply_detail(detail, prefix="SP", secret="another-secret-0123456789") is None
    assert parse_reply_detail(detail.upper(), prefix="SP", secret=SECRET) == ReplyToken(5, "requester")
    assert parse_reply_detail(detail.lower(), prefix="SP", secret=SECRET) == ReplyToken(5, "requester")


def test_a_verp_address_names_its_outbox_row_and_cannot_be_forged() -> None:
    address = verp_address("support@smilepass.example", outbox_id=17, secret=SECRET)
    assert address.startswith("support+bounce-17.") and address.endswith("@smilepass.example")
    detail = detail_of(address)
    assert parse_verp_detail(detail, secret=SECRET) == 17
    assert parse_verp_detail(detail.replace("bounce-17", "bounce-18"), secret=SECRET) is None
    assert parse_verp_detail(detail, secret="another-secret-0123456789") is None
    assert parse_verp_detail("bounce-17", secret=SECRET) is None
    # A reply token is not a VERP token, and the other way round.
    assert parse_reply_detail(detail, prefix="SP", secret=SECRET) is None


def test_a_base_address_with_a_detail_of_its_own_is_not_doubled() -> None:
    address = verp_address("support+billing@smilepass.example", outbox_id=3, secret=SECRET)
    assert address.startswith("support+bounce-3.")
