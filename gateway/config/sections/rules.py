"""`[[rules]]` (SPEC §14 "Routing rules"): match keys compiled once, actions checked against the
categories and staff the config names, so a bad rule fails `check-config` before any mail meets it.

Every problem names the rule (by `name`) and its key; a rule that would match every mail is allowed
but `rule_warnings` says so, for `check-config` to print.
"""

from __future__ import annotations

import re

from gateway.config.reader import Table, has_problem_under, one_of
from gateway.config.settings import (
    MATCH_KEYS,
    RoutingRule,
    RuleMatch,
    StaffSettings,
    TicketSettings,
)
from gateway.config.validators import bare_address, find_category
from gateway.domain import Priority

# Texts any catch-all pattern matches: nothing, a word, an address, two lines.
_ANY_TEXT = ("", "x", "Some subject", "maria@customer.example", "first line\nsecond line")
# Keys every mail has a value for (an empty subject is still a subject); a mail without a Cc or
# without the header named is not matched by `cc` or `header`, whatever their pattern.
_ALWAYS_PRESENT = frozenset({"from", "to", "subject", "body"})
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but ':'


def read_rules(tables: list[Table], tickets: TicketSettings, staff: StaffSettings) -> tuple[RoutingRule, ...]:
    rules: list[RoutingRule] = []
    seen: dict[str, str] = {}
    for t in tables:
        name = t.required_text("name", 'a name for the rule, such as "newsletters" (events name it)')
        label = f"rule {name!r}" if name else "this rule"
        if name and name.casefold() in seen:
            t.problem(
                "name", f"{label} has the same name as {seen[name.casefold()]} (names are case-insensitive)"
            )
        elif name:
            seen[name.casefold()] = t.path
        matches = tuple(m for key in MATCH_KEYS if (m := _match(t, key, label)) is not None)
        priority = t.optional_choice("priority", Priority)
        category = _category(t, label, tickets)
        assign = _assignee(t, label, staff)
        acknowledge = t.boolean("acknowledge", True)
        drop = t.boolean("drop", False)
        acts = priority is not None or category is not None or assign is not None or not acknowledge
        if drop and acts:
            t.problem(
                "drop", f"{label}: drop = true stores the mail without a ticket, so it takes no other action"
            )
        elif not drop and not acts and not _any_action_key(t):
            t.problem(
                "name",
                f"{label} has no action: give priority, category, assign, acknowledge = false or drop = true",
            )
        t.finish()
        rules.append(
            RoutingRule(
                name=name,
                matches=matches,
                priority=priority,
                category=category,
                assign=assign,
                acknowledge=acknowledge,
                drop=drop,
            )
        )
    return tuple(rules)


def rule_warnings(rules: tuple[RoutingRule, ...]) -> list[tuple[str, str]]:
    """(key, warning) for each rule that matches every mail: allowed, but rarely what was meant."""
    warnings: list[tuple[str, str]] = []
    for index, rule in enumerate(rules):
        if not rule.matches:
            why = "it has no match key (from, to, cc, subject, body, header)"
        elif all(m.key in _ALWAYS_PRESENT and _matches_anything(m.pattern) for m in rule.matches):
            why = "each of its patterns (" + ", ".join(m.written for m in rule.matches) + ") matches any text"
        else:
            continue
        warnings.append(
            (f"rules[{index}]", f"rule {rule.name!r} matches every mail that opens a ticket: {why}")
        )
    return warnings


def _matches_anything(pattern: re.Pattern[str]) -> bool:
    return all(pattern.search(text) is not None for text in _ANY_TEXT)


def _match(t: Table, key: str, label: str) -> RuleMatch | None:
    written = t.optional_text(key)
    if written is None:
        return None
    header: str | None = None
    pattern_text = written
    if key == "header":
        name, colon, rest = written.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name.strip()):
            t.problem(
                key,
                f'{label}: expected "Header-Name: pattern", such as "List-Id: .*example", got {written!r}',
            )
            return None
        header, pattern_text = name.strip().lower(), rest.strip()
    try:
        pattern = re.compile(pattern_text, re.IGNORECASE)
    except re.error as exc:
        t.problem(key, f"{label}: {pattern_text!r} is not a valid regular expression: {exc}")
        return None
    return RuleMatch(key=key, pattern=pattern, header=header)


def _category(t: Table, label: str, tickets: TicketSettings) -> str | None:
    given = t.optional_text("category")
    if given is None:
        return None
    found = find_category(given, tickets.categories)
    if found is None:
        t.problem(
            "category", f"{label}: {given!r} is not one of tickets.categories ({one_of(tickets.categories)})"
        )
    return found


def _assignee(t: Table, label: str, staff: StaffSettings) -> str | None:
    given = t.optional_text("assign")
    if given is None:
        return None
    if not staff.is_staff(given):
        known = one_of(staff.addresses) if staff.addresses else "none are configured"
        t.problem("assign", f"{label}: {given!r} is not one of staff.addresses ({known})")
        return None
    return next(a for a in staff.addresses if a.lower() == bare_address(given))


def _any_action_key(t: Table) -> bool:
    """An action key was written but was wrong (its problem is already reported): no second one."""
    return any(has_problem_under(t, key) for key in ("priority", "category", "assign", "acknowledge", "drop"))
