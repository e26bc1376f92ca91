"""`[[rules]]` (SPEC §14): what the config accepts and refuses (every problem names the rule and the
key), which rules `check-config` warns about, and which rules fire on a mail and what they decide."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import ConfigErrors, Settings, settings_from_mapping
from gateway.config.sections.rules import rule_warnings
from gateway.domain import Address, Envelope, Priority
from gateway.mail.parse import parse_mail
from gateway.pipeline.routing_rules import route
from tests.helpers import TEST_SECRET, make_mail

SUPPORT = "support@smilepass.example"


def config(*rules: dict[str, Any]) -> Settings:
    return settings_from_mapping(
        {
            "gateway": {"addresses": [SUPPORT], "secret": TEST_SECRET},
            "staff": {"addresses": ["ana@smilepass.example"]},
            "rules": list(rules),
        },
        environ={},
    )


def problems(*rules: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigErrors) as raised:
        config(*rules)
    return [(error.key, error.problem) for error in raised.value.errors]


# --- the config --------------------------------------------------------------------------------


def test_a_rule_is_read_with_its_keys_compiled_case_insensitive_and_its_names_normalised() -> None:
    settings = config(
        {
            "name": "lists",
            "header": "List-Id: .*example",
            "subject": "newsletter",
            "category": "general questions",
            "assign": "ANA@smilepass.example",
            "priority": "high",
            "acknowledge": False,
        }
    )
    (rule,) = settings.rules
    assert [(m.key, m.header, m.pattern.pattern) for m in rule.matches] == [
        ("subject", None, "newsletter"),
        ("header", "list-id", ".*example"),
    ]
    assert all(m.pattern.flags & re.IGNORECASE for m in rule.matches)
    assert (rule.category, rule.assign, rule.priority, rule.acknowledge, rule.drop) == (
        "General Questions",
        "ana@smilepass.example",
        Priority.HIGH,
        False,
        False,
    )


def test_a_bad_pattern_names_the_rule_and_the_key() -> None:
    assert problems({"name": "refunds", "body": "refund(", "category": "Billing & Payments"}) == [
        (
            "rules[0].body",
            "rule 'refunds': 'refund(' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 6",
        )
    ]


def test_a_header_key_without_a_header_name_is_refused() -> None:
    [(key, problem)] = problems({"name": "lists", "header": ".*example", "drop": True})
    assert key == "rules[0].header"
    assert "rule 'lists'" in problem and "List-Id: .*example" in problem


def test_an_unknown_category_or_staff_address_names_the_rule_and_the_key() -> None:
    found = problems(
        {"name": "vip", "from": "@bigcorp", "category": "Sales", "assign": "bob@smilepass.example"}
    )
    assert [key for key, _ in found] == ["rules[0].category", "rules[0].assign"]
    assert found[0][1].startswith("rule 'vip': 'Sales' is not one of tickets.categories (")
    assert (
        found[1][1]
        == "rule 'vip': 'bob@smilepass.example' is not one of staff.addresses (ana@smilepass.example)"
    )


def test_a_rule_needs_a_name_an_action_and_no_action_beside_drop() -> None:
    assert [key for key, _ in problems({"subject": "x", "drop": True})] == ["rules[0].name"]
    assert problems({"name": "idle", "subject": "x"}) == [
        ("rules[0].name", "rule 'idle' has no action: give priority, category, assign, acknowledge = false "
         "or drop = true"),
    ]  # fmt: skip
    [(key, problem)] = problems({"name": "both", "subject": "x", "drop": True, "priority": "High"})
    assert key == "rules[0].drop" and "takes no other action" in problem
    [(key, problem)] = problems(
        {"name": "a", "subject": "x", "drop": True}, {"name": "A", "to": "y", "drop": True}
    )
    assert key == "rules[1].name" and "same name as rules[0]" in problem
    [(key, problem)] = problems({"name": "typo", "subjet": "x", "drop": True})
    assert key == "rules[0].subjet" and "did you mean 'subject'" in problem


def test_rules_that_match_every_mail_are_allowed_but_warned_about() -> None:
    settings = config(
        {"name": "everything", "priority": "High"},
        {"name": "dot-star", "subject": ".*", "body": "^", "priority": "High"},
        {"name": "lists", "header": "List-Id: .*", "acknowledge": False},  # only mail with a List-Id
        {"name": "copied", "cc": ".*", "priority": "Low"},  # only mail with a Cc
        {"name": "billing", "subject": "invoice|.*", "to": "billing@", "category": "Billing & Payments"},
    )
    assert rule_warnings(settings.rules) == [
        ("rules[0]", "rule 'everything' matches every mail that opens a ticket: it has no match key "
                     "(from, to, cc, subject, body, header)"),
        ("rules[1]", "rule 'dot-star' matches every mail that opens a ticket: each of its patterns "
                     "(subject ~ '.*', body ~ '^') matches any text"),
    ]  # fmt: skip


# --- which rules fire --------------------------------------------------------------------------


def routed(settings: Settings, raw: bytes, *, rcpt: tuple[str, ...] = (SUPPORT,)) -> Any:
    mail = parse_mail(raw)
    requester = mail.sender or Address("unknown@invalid")
    envelope = Envelope(mail_from=requester.address, rcpt_tos=rcpt, source="smtp")
    return route(mail, envelope, requester=requester, rules=settings.rules)


def test_every_key_of_a_rule_must_match_and_each_fired_rule_is_named_in_order() -> None:
    settings = config(
        {"name": "bigcorp", "from": r"@bigcorp\.example$", "priority": "High"},
        {
            "name": "bigcorp-billing",
            "from": "bigcorp",
            "subject": "invoice",
            "category": "Billing & Payments",
        },
        {
            "name": "urgent-body",
            "body": "site is down",
            "priority": "Urgent",
            "assign": "ana@smilepass.example",
        },
    )
    invoice = make_mail("INVOICE 42 is wrong", "Please fix.", sender="Kim <kim@bigcorp.example>")
    routing = routed(settings, invoice)
    assert routing.names == ("bigcorp", "bigcorp-billing")
    assert (routing.priority, routing.priority_by) == (Priority.HIGH, "bigcorp")
    assert (routing.category, routing.category_by) == ("Billing & Payments", "bigcorp-billing")
    assert routing.fired[1].because == (
        "from ~ 'bigcorp' matched 'bigcorp'",
        "subject ~ 'invoice' matched 'INVOICE'",
    )

    down = make_mail("Help", "Our SITE IS DOWN since 9:00.", sender="Kim <kim@bigcorp.example>")
    routing = routed(settings, down)
    assert routing.names == ("bigcorp", "urgent-body")
    assert (routing.priority, routing.priority_by) == (Priority.URGENT, "urgent-body")  # the later rule wins
    assert routing.assign == "ana@smilepass.example"

    assert routed(settings, make_mail("INVOICE 42", "x", sender="maria@customer.example")).fired == ()


def test_header_to_and_cc_keys_match_what_the_mail_carries() -> None:
    settings = config(
        {"name": "lists", "header": "List-Id: <news\\.vendor\\.example>", "drop": True},
        {"name": "billing-box", "to": "^billing@", "category": "Billing & Payments"},
        {"name": "copied-boss", "cc": "Boss <", "acknowledge": False},
    )
    listed = make_mail("Weekly news", "x", headers={"List-Id": "Vendor News <news.vendor.example>"})
    assert routed(settings, listed).dropped_by == "lists"
    assert routed(settings, make_mail("Weekly news", "x")).fired == ()

    to_billing = make_mail("Card declined", "x", to="billing@smilepass.example")
    assert routed(settings, to_billing).category == "Billing & Payments"
    # The envelope recipient counts too (a Bcc, or a list that rewrote To).
    assert routed(settings, make_mail("Card", "x"), rcpt=("billing@smilepass.example",)).names == (
        "billing-box",
    )

    copied = make_mail("Hi", "x", headers={"Cc": "The Boss <boss@customer.example>"})
    assert routed(settings, copied).silenced_by == "copied-boss"


# Letters whose upper and lower case are one letter each (not "ß" → "SS"), digits, punctuation that
# patterns treat specially once unescaped, and spaces.
_ALPHABET = "abcxyzABCXYZéÉüÜøØжЖ0189 .*+?()[]{}|^$\\-_@:"
_WORDS = st.text(alphabet=_ALPHABET, min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(before=_WORDS, word=_WORDS.filter(lambda w: w.strip() != ""), after=_WORDS)
def test_a_literal_pattern_fires_on_any_subject_that_contains_it_in_any_case(
    before: str, word: str, after: str
) -> None:
    """The family: an escaped literal is found wherever it stands in the subject, whatever its case,
    and a rule with a second key that does not hold never fires."""
    settings = config(
        {"name": "word", "subject": re.escape(word.strip()), "priority": "High"},
        {
            "name": "word-and-nobody",
            "subject": re.escape(word.strip()),
            "from": "^nobody@",
            "priority": "Low",
        },
    )
    subject = " ".join(f"{before} {word.strip().swapcase()} {after}".split())
    mail = make_mail("x", "body")
    raw = mail.replace(b"Subject: x", ("Subject: " + subject).encode("utf-8"), 1)
    parsed_subject = parse_mail(raw).subject
    if word.strip().swapcase().casefold() not in parsed_subject.casefold():
        return  # the header parser changed it (encoded words): not this rule's family
    assert routed(settings, raw).names == ("word",)
