"""Tag words → priority and category: from `+` sub-addresses of our addresses (SPEC §3 step 5).

Also home of the two rules subject tags share with sub-addresses: a group of words counts only
when every word is in the vocabulary, and merging keeps the most urgent priority and the first category.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from gateway.addresses import GatewayAddresses
from gateway.domain import TagMeaning, TagVocabulary

# `support+urgent.billing@`: the words of a sub-address detail may be joined by any of these.
_DETAIL_SEPARATORS = re.compile(r"[+._\-]+")


def lookup_all(words: Sequence[str], vocabulary: TagVocabulary) -> tuple[TagMeaning, ...] | None:
    """The meaning of each word, or None unless every word is a tag word.

    All or nothing, so prose that happens to contain a tag word (`[payment failed]`) or a reply
    token that happens to contain one (`SP-42.low3x`) is never half-read as tags.
    """
    if not words:
        return None
    meanings: list[TagMeaning] = []
    for word in words:
        meaning = vocabulary.lookup(word)
        if meaning is None:
            return None
        meanings.append(meaning)
    return tuple(meanings)


def merge_tags(meanings: Iterable[TagMeaning]) -> TagMeaning:
    """One meaning from many: the most urgent priority wins, and the first category given wins.

    Priority takes the most urgent because a customer who marks a mail both `[low]` and `[urgent]`
    (or writes to `support+urgent@` with `[low]` in the subject) should not be queued behind it;
    category takes the first because categories do not rank, and the first is the one written first.
    """
    priority = None
    category = None
    for meaning in meanings:
        if meaning.priority is not None and (priority is None or meaning.priority.rank < priority.rank):
            priority = meaning.priority
        if category is None and meaning.category is not None:
            category = meaning.category
    return TagMeaning(priority=priority, category=category)


def tags_from_addresses(
    addresses: Iterable[str], ours: GatewayAddresses, vocabulary: TagVocabulary
) -> tuple[TagMeaning, ...]:
    """The tag meanings carried by `+` sub-addresses of our addresses, in address and word order.

    `support+billing@` and `support+urgent.billing@` (words joined by `+ . - _`) are tags when every
    word of the detail is a tag word; any other detail (a reply token `SP-42.abc123`, `bounce-…`,
    a word we do not know) means nothing. Addresses that are not ours are ignored.
    Give bare addresses (`support+billing@example.com`), not display-name forms.
    """
    found = _address_tags(addresses, ours, vocabulary)
    return tuple(meaning for _, meanings in found for meaning in meanings)


def tag_words_from_addresses(
    addresses: Iterable[str], ours: GatewayAddresses, vocabulary: TagVocabulary
) -> tuple[str, ...]:
    """The tag words of those sub-addresses, lower case, each once (the ticket's `tag` events)."""
    words = (word.lower() for found, _ in _address_tags(addresses, ours, vocabulary) for word in found)
    return tuple(dict.fromkeys(words))


def _address_tags(
    addresses: Iterable[str], ours: GatewayAddresses, vocabulary: TagVocabulary
) -> Iterator[tuple[list[str], tuple[TagMeaning, ...]]]:
    """Each sub-address of ours whose detail is all tag words: its words and their meanings."""
    for address in addresses:
        match = ours.match(address)
        if match is None or not match.detail:
            continue
        words = [word for word in _DETAIL_SEPARATORS.split(match.detail) if word]
        meanings = lookup_all(words, vocabulary)
        if meanings is not None:
            yield words, tuple(meanings)
