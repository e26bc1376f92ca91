"""Commands by mail (SPEC §5): the `#word` / `#field value` lines at the top of a reply; a pure parser.

Grammar, where the spec is silent:
- Command lines are the lines at the top of the new text, before any other text; blank lines between
  them are allowed. A command line is `#` directly followed by a word (`#resolved`, `#in-progress`),
  optionally followed by a value (`#priority high`); trailing `.`, `,`, `;`, `!` are ignored. `# Title`
  (a space after `#`) and `#42` are text, so a mail that starts with them has no commands.
- Words: `#status <s>` and the shortcuts `#open`/`#reopen`, `#in-progress`, `#waiting`, `#resolved`,
  `#close`/`#closed`; `#priority <p>`; `#category <c>` (a category name or a tag word); any tag word
  of the vocabulary (`#urgent`, `#billing`); `#assign me|<staff address>|none`, `#unassign`;
  `#note` (the reply is internal; text after `#note` on the same line is kept as the note's first line);
  `#queue` and `#queue mine` (staff: the open queue, or their part of it, in the command receipt);
  `#cc add ADDRESS` and `#cc remove ADDRESS` (`+`/`-` and `del` too; staff or the requester: who is
  copied, SPEC §13); `#merge SP-41` (`#merge #41`, `#merge 41` too; staff: this ticket into that one).
- Every command-shaped line is removed from the text, understood or not; one that is not understood
  is returned with the reason, so it can be refused (and reported) rather than silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from enum import StrEnum

from gateway.domain import Priority, Status, TagVocabulary, Visibility


class Field(StrEnum):
    """What a command changes; the names are the `field` of the events it makes."""

    STATUS = "status"
    PRIORITY = "priority"
    CATEGORY = "category"
    ASSIGNEE = "assignee"
    VISIBILITY = "visibility"
    QUEUE = "queue"  # changes nothing: asks for the queue in the receipt (value QUEUE_ALL or QUEUE_MINE)
    CC = "participants"  # value `add ADDRESS` or `remove ADDRESS` (CC_ADD, CC_REMOVE)
    MERGE = "merged_into"  # value: the ticket number named (the prefix is checked when it is applied)


ASSIGN_ME = "me"
UNASSIGNED = ""
INTERNAL = Visibility.INTERNAL.value  # the value of `#note`: the entry is for staff only
QUEUE_ALL = "all"
QUEUE_MINE = "mine"
CC_ADD = "add"
CC_REMOVE = "remove"
_CC_OPS = {"add": CC_ADD, "+": CC_ADD, "remove": CC_REMOVE, "rm": CC_REMOVE, "del": CC_REMOVE, "-": CC_REMOVE}
# `SP-41`, `[SP-41]`, `#41` or `41`: the prefix (if any) is kept, to be checked against the config's.
_TICKET_REF = re.compile(r"\[?(?:([A-Za-z][A-Za-z0-9]*)-|#)?(\d{1,18})\]?")


@dataclass(frozen=True)
class Command:
    """One understood effect of a command line (a tag word meaning both priority and category gives
    two), or a line that was not understood (`field` None, `problem` says why)."""

    line: str  # as written, stripped
    field: Field | None
    value: str | None = None  # Status/Priority value, category name, "me"/address/"" for assignee
    problem: str | None = None

    @property
    def understood(self) -> bool:
        return self.field is not None


@dataclass(frozen=True)
class CommandBlock:
    """The commands at the top of a reply, and the text that remains for the conversation."""

    commands: tuple[Command, ...]
    text: str

    @property
    def lines(self) -> tuple[str, ...]:
        """The command lines, as written, each once."""
        return tuple(dict.fromkeys(command.line for command in self.commands))

    @property
    def internal(self) -> bool:
        return any(c.field is Field.VISIBILITY for c in self.commands)


_COMMAND_LINE = re.compile(r"#([A-Za-z][\w-]*)(?:[ \t]+(.*?))?")
_TRAILING_PUNCTUATION = ".,;!"

_STATUS_WORDS: dict[str, Status] = {
    "open": Status.OPEN,
    "reopen": Status.OPEN,
    "in-progress": Status.IN_PROGRESS,
    "inprogress": Status.IN_PROGRESS,
    "progress": Status.IN_PROGRESS,
    "waiting": Status.WAITING,
    "waiting-on-user": Status.WAITING,
    "waiting-on-customer": Status.WAITING,
    "resolved": Status.RESOLVED,
    "resolve": Status.RESOLVED,
    "solved": Status.RESOLVED,
    "closed": Status.CLOSED,
    "close": Status.CLOSED,
}
_UNASSIGN_WORDS = ("none", "nobody", "-", "unassigned")


def parse_commands(text: str, *, vocabulary: TagVocabulary, categories: Sequence[str]) -> CommandBlock:
    """The command lines at the top of `text` (the new part of a reply) and the text without them."""
    lines = text.splitlines()
    commands: list[Command] = []
    kept_first: list[str] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped:
            index += 1
            continue
        match = _COMMAND_LINE.fullmatch(stripped.rstrip(_TRAILING_PUNCTUATION).rstrip())
        if match is None:
            break
        word = match.group(1).lower()
        value = (match.group(2) or "").strip()
        if word == "note":
            commands.append(Command(stripped, Field.VISIBILITY, INTERNAL))
            if value:
                kept_first.append(value)
        else:
            commands.extend(_understand(stripped, word, value, vocabulary, categories))
        index += 1
    remaining = "\n".join([*kept_first, *lines[index:]]).strip("\n")
    return CommandBlock(tuple(commands), remaining)


def _understand(
    line: str, word: str, value: str, vocabulary: TagVocabulary, categories: Sequence[str]
) -> list[Command]:
    if word == "status":
        status = _status(value)
        if status is None:
            return [_unknown(line, f"unknown status {value!r}: {_STATUS_HELP}")]
        return [Command(line, Field.STATUS, status.value)]
    if word == "priority":
        priority = _priority(value, vocabulary)
        if priority is None:
            return [_unknown(line, f"unknown priority {value!r}: one of Low, Medium, High, Urgent")]
        return [Command(line, Field.PRIORITY, priority.value)]
    if word == "category":
        category = _category(value, vocabulary, categories)
        if category is None:
            return [_unknown(line, f"unknown category {value!r}: one of {', '.join(categories)}")]
        return [Command(line, Field.CATEGORY, category)]
    if word in ("assign", "unassign"):
        return [_assign(line, word, value)]
    if word == "cc":
        return [_cc(line, value)]
    if word == "merge":
        return [_merge(line, value)]
    if word == "queue":
        if value.lower() in ("", QUEUE_ALL):
            return [Command(line, Field.QUEUE, QUEUE_ALL)]
        if value.lower() in (QUEUE_MINE, ASSIGN_ME):
            return [Command(line, Field.QUEUE, QUEUE_MINE)]
        return [_unknown(line, f"#queue takes nothing or mine, got {value!r}")]
    if value:
        return [_unknown(line, f"#{word} takes no value")]
    status = _STATUS_WORDS.get(word)
    if status is not None:
        return [Command(line, Field.STATUS, status.value)]
    meaning = vocabulary.lookup(word)
    if meaning is None:
        return [_unknown(line, f"unknown command #{word}")]
    found: list[Command] = []
    if meaning.priority is not None:
        found.append(Command(line, Field.PRIORITY, meaning.priority.value))
    if meaning.category is not None:
        found.append(Command(line, Field.CATEGORY, meaning.category))
    return found or [_unknown(line, f"tag #{word} means nothing")]


_STATUS_HELP = "open, in-progress, waiting, resolved or closed"


def _unknown(line: str, problem: str) -> Command:
    return Command(line, None, None, problem)


def _status(value: str) -> Status | None:
    key = re.sub(r"[\s_]+", "-", value.strip().lower())
    return _STATUS_WORDS.get(key)


def _priority(value: str, vocabulary: TagVocabulary) -> Priority | None:
    wanted = value.strip().lower()
    for priority in Priority:
        if priority.value.lower() == wanted:
            return priority
    meaning = vocabulary.lookup(wanted)
    return meaning.priority if meaning is not None else None


def _category(value: str, vocabulary: TagVocabulary, categories: Sequence[str]) -> str | None:
    wanted = value.strip().casefold()
    for category in categories:
        if category.casefold() == wanted:
            return category
    meaning = vocabulary.lookup(wanted)
    return meaning.category if meaning is not None else None


def _assign(line: str, word: str, value: str) -> Command:
    if word == "unassign":
        if value:
            return _unknown(line, "#unassign takes no value")
        return Command(line, Field.ASSIGNEE, UNASSIGNED)
    if not value:
        return _unknown(line, "#assign needs me, a staff address, or none")
    if value.lower() == ASSIGN_ME:
        return Command(line, Field.ASSIGNEE, ASSIGN_ME)
    if value.lower() in _UNASSIGN_WORDS:
        return Command(line, Field.ASSIGNEE, UNASSIGNED)
    address = parseaddr(value)[1]
    if "@" not in address:
        return _unknown(line, f"#assign needs me, a staff address, or none, got {value!r}")
    return Command(line, Field.ASSIGNEE, address.lower())


def _cc(line: str, value: str) -> Command:
    op, _, rest = value.partition(" ")
    wanted = _CC_OPS.get(op.strip().lower())
    address = parseaddr(rest.strip())[1]
    if wanted is None or "@" not in address:
        return _unknown(line, "#cc needs add or remove and an address (#cc add ana@example.com)")
    return Command(line, Field.CC, f"{wanted} {address.lower()}")


def _merge(line: str, value: str) -> Command:
    match = _TICKET_REF.fullmatch(value.strip())
    if match is None:
        return _unknown(line, f"#merge needs a ticket reference (#merge SP-41), got {value!r}")
    prefix = match.group(1) or ""
    return Command(line, Field.MERGE, f"{prefix.upper()}-{int(match.group(2))}" if prefix else match.group(2))


def merge_target(value: str, *, prefix: str) -> int | None:
    """The ticket number a `#merge` value names, or None when its prefix is not this desk's."""
    named, dash, number = value.rpartition("-")
    if dash and named.casefold() != prefix.casefold():
        return None
    return int(number)
