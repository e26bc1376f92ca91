"""Sub-address tags (`support+billing@`) and how several tag meanings merge (SPEC §3 step 5)."""

from __future__ import annotations

import pytest

from gateway.addresses import GatewayAddresses
from gateway.domain import (
    ACCOUNT,
    BILLING,
    DEFAULT_VOCABULARY,
    SECURITY,
    TECHNICAL,
    Priority,
    TagMeaning,
    TagVocabulary,
)
from gateway.mail.tags import lookup_all, merge_tags, tags_from_addresses

OURS = GatewayAddresses(["support@smilepass.example", "billing@smilepass.example"])


def tags(*addresses: str, ours: GatewayAddresses = OURS) -> tuple[TagMeaning, ...]:
    return tags_from_addresses(addresses, ours, DEFAULT_VOCABULARY)


def test_category_sub_address() -> None:
    assert tags("support+billing@smilepass.example") == (TagMeaning(category=BILLING),)


def test_priority_sub_address() -> None:
    assert tags("support+urgent@smilepass.example") == (TagMeaning(priority=Priority.URGENT),)


def test_synonym_sub_address() -> None:
    assert tags("support+asap@smilepass.example") == (TagMeaning(priority=Priority.URGENT),)


def test_case_of_address_and_detail_does_not_matter() -> None:
    assert tags("SUPPORT+Urgent@SmilePass.Example") == (TagMeaning(priority=Priority.URGENT),)


def test_angle_brackets_around_address_are_tolerated() -> None:
    assert tags("<support+billing@smilepass.example>") == (TagMeaning(category=BILLING),)


@pytest.mark.parametrize("detail", ["urgent.billing", "urgent-billing", "urgent_billing", "urgent+billing"])
def test_several_words_in_one_detail_each_count(detail: str) -> None:
    assert tags(f"support+{detail}@smilepass.example") == (
        TagMeaning(priority=Priority.URGENT),
        TagMeaning(category=BILLING),
    )


@pytest.mark.parametrize(
    "detail",
    [
        "SP-42.abc123",  # a reply address token
        "SP-42.low",  # a token that happens to end in a tag word
        "bounce-5f3a9c",  # a VERP bounce address
        "urgent.xyz",  # one unknown word spoils the lot
        "newsletter",
        "",
    ],
)
def test_unknown_details_mean_nothing(detail: str) -> None:
    assert tags(f"support+{detail}@smilepass.example") == ()


def test_plain_address_has_no_tags() -> None:
    assert tags("support@smilepass.example") == ()


@pytest.mark.parametrize(
    "address",
    ["sales+urgent@smilepass.example", "support+urgent@elsewhere.example", "not an address", ""],
)
def test_addresses_that_are_not_ours_are_ignored(address: str) -> None:
    assert tags(address) == ()


def test_tags_from_several_addresses_in_order() -> None:
    found = tags(
        "someone@customer.example",
        "billing+refund@smilepass.example",
        "support+security.high@smilepass.example",
    )
    assert found == (
        TagMeaning(category=BILLING),
        TagMeaning(category=SECURITY),
        TagMeaning(priority=Priority.HIGH),
    )


def test_wildcard_domain_address() -> None:
    ours = GatewayAddresses(["support@*"])
    assert tags("support+login@anything.example", ours=ours) == (TagMeaning(category=ACCOUNT),)


def test_configured_vocabulary_is_used() -> None:
    vocabulary = TagVocabulary(words={"p1": TagMeaning(priority=Priority.URGENT)})
    assert tags_from_addresses(["support+p1@smilepass.example"], OURS, vocabulary) == (
        TagMeaning(priority=Priority.URGENT),
    )
    assert tags_from_addresses(["support+urgent@smilepass.example"], OURS, vocabulary) == ()


def test_merge_keeps_most_urgent_priority() -> None:
    merged = merge_tags(
        [
            TagMeaning(priority=Priority.LOW),
            TagMeaning(priority=Priority.URGENT),
            TagMeaning(priority=Priority.HIGH),
        ]
    )
    assert merged.priority is Priority.URGENT


def test_merge_keeps_first_category() -> None:
    merged = merge_tags(
        [TagMeaning(priority=Priority.LOW), TagMeaning(category=SECURITY), TagMeaning(category=BILLING)]
    )
    assert merged == TagMeaning(priority=Priority.LOW, category=SECURITY)


def test_merge_of_a_meaning_with_both() -> None:
    both = TagMeaning(priority=Priority.HIGH, category=TECHNICAL)
    assert merge_tags([both, TagMeaning(category=BILLING)]) == both


def test_merge_of_nothing_is_empty() -> None:
    assert merge_tags([]) == TagMeaning()


def test_lookup_all_is_all_or_nothing() -> None:
    assert lookup_all(["Urgent", "bug"], DEFAULT_VOCABULARY) == (
        TagMeaning(priority=Priority.URGENT),
        TagMeaning(category=TECHNICAL),
    )
    assert lookup_all(["urgent", "please"], DEFAULT_VOCABULARY) is None
    assert lookup_all([], DEFAULT_VOCABULARY) is None
