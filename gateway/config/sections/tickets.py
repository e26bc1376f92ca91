"""What tickets are: `[tickets]` with its categories, `[tags]`, `[response_targets]` and `[views]`."""

from __future__ import annotations

import re
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.reader import Table, describe, has_problem_under, one_of
from gateway.config.settings import TicketSettings, ViewSettings
from gateway.config.validators import enum_member, find_category
from gateway.domain import (
    DEFAULT_CATEGORIES,
    DEFAULT_CATEGORY,
    DEFAULT_VOCABULARY,
    Priority,
    Status,
    TagMeaning,
    TagVocabulary,
)
from gateway.response_targets import ResponseTargets


def read_tickets(t: Table, root: Table) -> TicketSettings:
    categories = _read_categories(t)
    default_category = DEFAULT_CATEGORY
    given = t.optional_text("default_category")
    if given is not None:
        found = find_category(given, categories)
        if found is None:
            t.problem(
                "default_category", f"{given!r} is not one of tickets.categories ({one_of(categories)})"
            )
        else:
            default_category = found
    elif DEFAULT_CATEGORY not in categories and categories:
        t.problem(
            "default_category",
            f"required when tickets.categories does not include {DEFAULT_CATEGORY!r}: "
            f"one of {one_of(categories)}",
        )

    status = t.choice("staff_reply_status", Status, Status.WAITING)
    if status is Status.CLOSED:
        t.problem(
            "staff_reply_status",
            "expected Open, In Progress, Waiting on user or Resolved, got 'Closed': a closed "
            "ticket takes no more replies",
        )
    settings = TicketSettings(
        categories=categories,
        default_category=default_category,
        default_priority=t.choice("default_priority", Priority, Priority.LOW),
        vocabulary=_read_tags(root, categories),
        auto_close_days=t.integer("auto_close_days", 7),
        staff_reply_status=status,
    )
    t.finish()
    return settings


def _read_categories(t: Table) -> tuple[str, ...]:
    if not t.has("categories"):
        t.text_list("categories", ())  # records the key as known
        return DEFAULT_CATEGORIES
    categories: list[str] = []
    for index, name in enumerate(t.text_list("categories", ())):
        duplicate = find_category(name, categories)
        if duplicate is not None:
            t.problem(f"categories[{index}]", f"{name!r} is listed twice (names are case-insensitive)")
        elif len(name) > 100 or any(ord(char) < 32 for char in name):
            t.problem(f"categories[{index}]", f"expected one line of at most 100 characters, got {name!r}")
        else:
            categories.append(name)
    if not categories and not has_problem_under(t, "categories"):
        t.problem("categories", "must list at least one category (leave the key out for the defaults)")
    return tuple(categories) or DEFAULT_CATEGORIES


def _read_tags(root: Table, categories: tuple[str, ...]) -> TagVocabulary:
    if not root.has("tags"):
        root.table("tags")  # records the key as known
        if categories == DEFAULT_CATEGORIES:
            return DEFAULT_VOCABULARY
        # The built-in words whose category this deployment has (priority words always apply).
        return TagVocabulary(
            words={
                word: meaning
                for word, meaning in DEFAULT_VOCABULARY.words.items()
                if meaning.category is None or meaning.category in categories
            }
        )
    t = root.table("tags")
    words: dict[str, TagMeaning] = {}
    spelled: dict[str, str] = {}
    for word, value in t.data.items():
        meaning = _tag_meaning(t, word, value, categories)
        lowered = word.strip().lower()
        if not re.fullmatch(r"\w[\w-]*", lowered):
            t.problem(
                word, "a tag word is letters, digits, '-' and '_' (it is written as [word] or support+word@)"
            )
        elif lowered in words:
            t.problem(word, f"the same word as {spelled[lowered]!r} (tag words are case-insensitive)")
        elif meaning is not None:
            words[lowered] = meaning
            spelled[lowered] = word
    return TagVocabulary(words=words)


def _tag_meaning(t: Table, word: str, value: Any, categories: tuple[str, ...]) -> TagMeaning | None:
    names: list[Any] = value if isinstance(value, list) else [value]
    expected = "a priority or category name, or an array of one priority and one category"
    if not names or len(names) > 2 or not all(isinstance(name, str) for name in names):
        t.problem(word, f"expected {expected}, got {describe(value)}")
        return None
    priority: Priority | None = None
    category: str | None = None
    for name in names:
        as_priority = enum_member(Priority, name)
        as_category = find_category(name, categories)
        if as_priority is not None and priority is None:
            priority = as_priority
        elif as_category is not None and category is None:
            category = as_category
        elif as_priority is not None or as_category is not None:
            t.problem(word, f"expected {expected}, got two of the same kind: {value!r}")
            return None
        else:
            t.problem(
                word,
                f"{name!r} is neither a priority ({one_of(p.value for p in Priority)}) "
                f"nor one of tickets.categories ({one_of(categories)})",
            )
            return None
    return TagMeaning(priority=priority, category=category)


def read_response_targets(t: Table) -> ResponseTargets:
    """Minutes to a first staff reply per priority (SPEC §12); Enterprise gets half of each."""
    default = ResponseTargets()
    targets = ResponseTargets(
        urgent=t.integer("urgent", default.urgent),
        high=t.integer("high", default.high),
        medium=t.integer("medium", default.medium),
        low=t.integer("low", default.low),
    )
    t.finish()
    return targets


_SUB_ADDRESS_WORD = re.compile(r"[a-z0-9][a-z0-9_-]*")


def read_views(t: Table) -> ViewSettings:
    """`[views]`: the my-tickets word, its hourly limit, and the digest time in its time zone."""
    default = ViewSettings()
    word = t.text("my_tickets_word", default.my_tickets_word).strip().lower()
    if not _SUB_ADDRESS_WORD.fullmatch(word) or word.startswith("bounce"):
        t.problem(
            "my_tickets_word",
            f'expected a word of letters, digits, "-" or "_" for the sub-address (support+WORD@), '
            f'not starting with "bounce", got {word!r}',
        )
        word = default.my_tickets_word
    per_hour = t.integer("my_tickets_per_hour", default.my_tickets_per_hour)
    zone_name = t.text("timezone", default.timezone).strip()
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        t.problem(
            "timezone", f'expected an IANA time zone name such as "Europe/Oslo" or "UTC", got {zone_name!r}'
        )
        zone_name = default.timezone
    digest_at: time | None = None
    written = t.optional_text("digest_at")
    if written is not None:
        try:
            digest_at = time.fromisoformat(written.strip())
        except ValueError:
            t.problem("digest_at", f'expected a time of day as "HH:MM", such as "08:00", got {written!r}')
        if digest_at is not None and (digest_at.second or digest_at.microsecond or digest_at.tzinfo):
            t.problem(
                "digest_at",
                f'expected "HH:MM" without seconds or offset (the zone is views.timezone), got {written!r}',
            )
            digest_at = None
    t.finish()
    return ViewSettings(
        my_tickets_word=word, my_tickets_per_hour=per_hour, digest_at=digest_at, timezone=zone_name
    )
