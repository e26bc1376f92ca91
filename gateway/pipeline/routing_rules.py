"""Which `[[rules]]` fire on a mail that opens a ticket, and what they decide together (SPEC §14).

Pure: the parsed mail, its envelope, the requester and the rules are all it reads. Every rule
whose match keys all hold fires, in the order written; a later rule's priority, category or
assignee overrides an earlier one's; any fired rule with `acknowledge = false` silences the
acknowledgement and any with `drop = true` drops the mail. Each key is searched (not anchored),
case-insensitively, in each of its texts, and holds when one of them matches:

- `from`: the requester's address, `Name <address>`, and each `From` header as written;
- `to`: each `To` address (bare and with its name), the envelope recipients and `Delivered-To`;
- `cc`: each `Cc` address (bare and with its name); a mail without `Cc` has none to match;
- `subject`: the subject, decoded, before any prefix or tag is taken out;
- `body`: the text of the mail (HTML-only mail as its text), quotes and signature included;
- `header = "Name: pattern"`: each value of that header; a mail without it has none to match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config import RoutingRule, RuleMatch
from gateway.domain import Address, Envelope, ParsedMail, Priority


@dataclass(frozen=True)
class FiredRule:
    """A rule that matched, and for each of its keys the text that matched (for events, explain)."""

    name: str
    because: tuple[str, ...]


@dataclass(frozen=True)
class Routing:
    """What the rules that fired decide; the `*_by` fields name the rule that decided each action."""

    fired: tuple[FiredRule, ...] = ()
    priority: Priority | None = None
    priority_by: str | None = None
    category: str | None = None
    category_by: str | None = None
    assign: str | None = None
    assign_by: str | None = None
    silenced_by: str | None = None  # a rule said acknowledge = false
    dropped_by: str | None = None  # a rule said drop = true

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.fired)


NO_ROUTING = Routing()


def route(
    mail: ParsedMail, envelope: Envelope, *, requester: Address, rules: Sequence[RoutingRule]
) -> Routing:
    """Every rule of `rules` tried in order against the mail; the combined decision."""
    if not rules:
        return NO_ROUTING
    texts = _Texts(mail, envelope, requester)
    routing = NO_ROUTING
    fired: list[FiredRule] = []
    for rule in rules:
        because = _holds(rule, texts)
        if because is None:
            continue
        fired.append(FiredRule(rule.name, because))
        routing = Routing(
            priority=rule.priority or routing.priority,
            priority_by=rule.name if rule.priority else routing.priority_by,
            category=rule.category or routing.category,
            category_by=rule.name if rule.category else routing.category_by,
            assign=rule.assign or routing.assign,
            assign_by=rule.name if rule.assign else routing.assign_by,
            silenced_by=routing.silenced_by or (None if rule.acknowledge else rule.name),
            dropped_by=routing.dropped_by or (rule.name if rule.drop else None),
        )
    return Routing(**{**routing.__dict__, "fired": tuple(fired)})


def _holds(rule: RoutingRule, texts: _Texts) -> tuple[str, ...] | None:
    """Why each key of `rule` holds, or None when one does not."""
    because: list[str] = []
    for match in rule.matches:
        found = next((m for text in texts.of(match) if (m := match.pattern.search(text))), None)
        if found is None:
            return None
        shown = found.group(0) or found.string  # an empty match (`.*` on "") shows what it was on
        because.append(f"{match.written} matched {_clip(shown)!r}")
    return tuple(because)


class _Texts:
    """The texts each match key is searched in, built once per mail."""

    def __init__(self, mail: ParsedMail, envelope: Envelope, requester: Address) -> None:
        self._mail = mail
        named = [requester.address] + ([f"{requester.name} <{requester.address}>"] if requester.name else [])
        self._by_key: dict[str, tuple[str, ...]] = {
            "from": (*named, *mail.headers.get("from", ())),
            "to": (*_addresses(mail.to), *envelope.rcpt_tos, *mail.delivered_to),
            "cc": _addresses(mail.cc),
            "subject": (mail.subject,),
            "body": (mail.text,),
        }

    def of(self, match: RuleMatch) -> tuple[str, ...]:
        if match.key == "header":
            return self._mail.headers.get(match.header or "", ())
        return self._by_key[match.key]


def _addresses(mailboxes: Sequence[Address]) -> tuple[str, ...]:
    texts: list[str] = []
    for mailbox in mailboxes:
        texts.append(mailbox.address)
        if mailbox.name:
            texts.append(f"{mailbox.name} <{mailbox.address}>")
    return tuple(texts)


def _clip(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"
