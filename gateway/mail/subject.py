"""Subject → title, ticket references and subject tags (SPEC §3 steps 1–4 and 6); a pure function.

Rules chosen where the spec is silent:
- Reply/forward prefixes are exact tokens, an optional counter, optional spaces, then a colon (`Re:`,
  `RE :`, `AW:`, `Re[2]:`, `RE(3) :`, `回复：` …), so a title that merely starts with such letters
  (`Rest API`, `Re-issue`, `Trial: …`, `R2 bucket`, `Recap: …`) is kept. With no space after the colon
  (`SV:Faktura`) the token must be written as clients write prefixes, capitalised or in capitals, and
  be longer than one letter: `re:Invent` (a name) and `I:O` stay. `Re - title` and `Fwd- title` (a
  hyphen, then a space) are prefixes too, for the short English tokens only.
  Prefixes are also removed right after leading bracket groups (`[EXTERNAL] RE: x` → `[EXTERNAL] x`).
- Ticket references count only in the bracketed forms `[SP-42]`, `[#42]`, `(SP-42)` (anywhere) and
  `SP-42:` at the start; a bare `SP-42` in prose is text and stays in the title.
- A bracket is a tag only when every word in it (split on spaces, `,`, `;`, `/`, `|`, `+`) is in the
  vocabulary: `[urgent]`, `[High][Bug]`, `[urgent, billing]`. Otherwise it stays verbatim.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.policy import default as _default_policy

from gateway.domain import Priority, TagMeaning, TagVocabulary
from gateway.mail.tags import lookup_all, merge_tags

TITLE_LIMIT = 200
NO_SUBJECT = "(no subject)"

# Latin-script prefix tokens (lower case; matched case-insensitively). Reply and forward, by language:
# en Re/Fwd/Fw, de AW/WG/Antwort, nl Antw/Doorst, da/no/sv SV/VS/VB, fi VS/VL, fr RE/Réf./Rép./TR,
# it R/RIF/I, es RE/RV, pt RES/ENC, pl Odp/PD, cs Odp/PŘ, hr/sl Odg, hu VÁ, tr YNT/İLT, id BLS/TRS,
# lv Atb, lt Ats/Pers.
_LATIN_PREFIXES = (
    "re", "fwd", "fw", "aw", "wg", "antwort", "antw", "doorst", "sv", "vs", "vb", "vl",
    r"réf\.?", r"rép\.?", r"ref\.?", "tr", "rif", "r", "i", "rv", "res", "enc", "odp", "pd", "př",
    "odg", "vá", "ynt", "ilt", "bls", "trs", "atb", "ats", "pers",
)  # fmt: skip
# Other scripts: zh 回复/回覆/答复/答覆/转发/轉發/转寄/轉寄, ja 返信/転送, ko 회신/답장/전달,
# el ΑΠ/ΣΧΕΤ/ΠΡΘ, he השב/הועבר, ar رد, ru/uk/bg Отв/Ответ/Пересл/Відп/Пер/Отг.
_OTHER_PREFIXES = (
    "回复", "回覆", "答复", "答覆", "转发", "轉發", "转寄", "轉寄", "返信", "転送", "회신", "답장", "전달",
    "απ", "σχετ", "πρθ", "השב", "הועבר", "رد", "отв", "ответ", "пересл", "відп", "отг",
)  # fmt: skip
# Counters some clients add: Re[2]:, Re(3):, Re^2:, Re*2:, Fwd [2]:
_COUNTER = r"(?:\s*\[\s*\d+\s*\]|\s*\(\s*\d+\s*\)|\^\d+|\*\d+)?"
# The colon, ASCII or full-width (and the small and presentation forms CJK fonts offer).
_COLON = "[:：﹕︓]"
_LATIN = rf"(?:{'|'.join(_LATIN_PREFIXES)}){_COUNTER}\s*"
_OTHER = rf"(?:{'|'.join(_OTHER_PREFIXES)}){_COUNTER}\s*"


def _as_clients_write(token: str) -> str:
    """`token` capitalised or in capitals only ("Sv", "SV"), matched case-sensitively."""
    forms = dict.fromkeys((token[:1].upper() + token[1:], token.upper()))
    return "(?-i:" + "|".join(forms) + ")"


# "SV:Faktura", "RE:2024 budget": no space after the colon, but a capitalised token of two letters or more.
_COMPACT_TOKENS = [_as_clients_write(t) for t in _LATIN_PREFIXES if len(t.replace(r"\.?", "")) > 1]
_COMPACT = rf"(?:{'|'.join(_COMPACT_TOKENS)}){_COUNTER}\s*:(?=\w)"
# "Re - title", "Fwd- title": a hyphen and a space after the short English tokens.
_HYPHENATED = r"(?:re|fwd|fw)\s*[-–](?=\s)"
_ONE_PREFIX = (
    rf"(?:{_COMPACT}|{_HYPHENATED}"
    rf"|{_LATIN}(?:[：﹕︓]|:(?=\s|$|[^\w]|{_LATIN}{_COLON}))"  # "re:Invent" is not a prefix
    rf"|{_OTHER}{_COLON})\s*"
)
_PREFIX_RUN = rf"(?:{_ONE_PREFIX})+"
# Leading bracket groups, e.g. an "[EXTERNAL]" banner, behind which prefixes still count.
_HEAD = r"((?:\[[^\[\]]*\]\s*)*)"
_LEADING_PREFIXES = re.compile(rf"^{_HEAD}{_PREFIX_RUN}", re.IGNORECASE)
# Old Mozilla forwards wrap the whole subject: "[Fwd: title]".
_WRAPPED_FORWARD = re.compile(rf"^\[\s*{_PREFIX_RUN}(.*?)\s*\]$", re.IGNORECASE)

_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_TAG_WORD_SEPARATORS = re.compile(r"[\s,;/|+]+")
_LINE_BREAK_BEFORE_WSP = re.compile(r"\r?\n(?=[ \t])")
_WHITESPACE = re.compile(r"\s+")
# C0/C1 controls, zero-width space, BOM, and bidi overrides that could disguise a title; and U+FFFD,
# a character lost before the mail reached us ("phone���"), which tells the reader nothing.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b\ufeff\u202a-\u202e\u2066-\u2069\ufffd]")
# Separators left dangling once a tag or prefix is gone: "[urgent] - title", "title - [bug]", "[x]: y".
_LEADING_SEPARATORS = re.compile(r"^(?:[:：|,;]+\s*|[-–—]+(?:\s+|$))+")
_TRAILING_SEPARATORS = re.compile(r"(?:(?:^|\s)[-–—:：|,;]+)+$")


@dataclass(frozen=True)
class SubjectInfo:
    """What a subject says: the title, the tags it carried, and the tickets it names."""

    title: str  # final title, <= 200 chars, never empty ("(no subject)" as last resort)
    priority: Priority | None  # from recognised subject tags; None when there was no priority tag
    category: str | None  # from recognised subject tags
    ticket_refs: tuple[int, ...]  # ticket ids referenced, in order found, without repeats
    tags: tuple[str, ...]  # the recognised tag words, lower case, in order found, without repeats

    @property
    def meaning(self) -> TagMeaning:
        """The subject tags as one meaning, ready to merge with sub-address tags."""
        return TagMeaning(priority=self.priority, category=self.category)


def parse_subject(
    subject: str,
    *,
    vocabulary: TagVocabulary,
    ticket_prefix: str,
    body: str = "",
    read_tags: bool = True,
    removed: list[str] | None = None,
) -> SubjectInfo:
    """Title, tags and ticket references of a subject (SPEC §3).

    Prefixes, ticket references and (with `read_tags`, for the mail that opens a ticket) bracketed
    tags are removed over and over until nothing changes, so their order does not matter:
    `[urgent] Re: [SP-4] AW: title` and `Re: [urgent] title` both give "title", priority Urgent.
    When several priority tags appear the most urgent wins; when several categories, the first wins.
    With `read_tags=False` brackets other than ticket references are left in the title.
    `removed`, when given, is appended each piece taken out, as written and in order, with what it
    was ("prefix 'Re:'", "reference '[SP-4]'", "tag '[urgent]'"), for `ticketgate explain`.
    An empty title falls back to the first non-empty line of `body`, then to "(no subject)".
    """
    if not ticket_prefix.strip():
        raise ValueError("ticket_prefix must not be empty")
    leading_ref, bracket_ref = _ref_patterns(ticket_prefix.strip())
    refs: list[int] = []
    words: list[str] = []
    meanings: list[TagMeaning] = []

    title = _one_line(_decode(subject))
    while True:
        before = title
        title = _strip_prefixes(title, removed)
        title = _take_refs(title, leading_ref, bracket_ref, refs, removed)
        if read_tags:
            title = _take_tags(title, vocabulary, words, meanings, removed)
        title = _LEADING_SEPARATORS.sub("", _WHITESPACE.sub(" ", title).strip())
        if title == before:
            break
    title = _TRAILING_SEPARATORS.sub("", title).strip()

    if not title:
        title = _first_line(body)
    merged = merge_tags(meanings)
    return SubjectInfo(
        title=cap_title(title or NO_SUBJECT),
        priority=merged.priority,
        category=merged.category,
        ticket_refs=tuple(dict.fromkeys(refs)),
        tags=tuple(dict.fromkeys(words)),
    )


def cap_title(text: str, limit: int = TITLE_LIMIT) -> str:
    """`text` cut to `limit` characters, at a word boundary with "…" when it was longer."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # A cut far back would lose most of the title: better to split a very long word.
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _decode(subject: str) -> str:
    """RFC 2047 decoded, by the stdlib header parser, which tolerates broken encoded words."""
    # Unfold first: a line break between two encoded words must vanish with the space around it.
    unfolded = _LINE_BREAK_BEFORE_WSP.sub("", subject).replace("\r", " ").replace("\n", " ")
    if "=?" not in unfolded and not _has_surrogates(unfolded):
        # What the parser gives back unchanged: it only decodes encoded words (which start with
        # "=?") and replaces lone surrogates. Most subjects reach here already decoded by
        # gateway.mail.parse, and the parser cost ~4 % of processing a mail (read twice per mail).
        return unfolded
    return str(_default_policy.header_factory("subject", unfolded))


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _one_line(text: str) -> str:
    """Whitespace folded to single spaces, invisible characters and lone surrogates removed."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _INVISIBLE.sub("", _WHITESPACE.sub(" ", text)).strip()


def _first_line(body: str) -> str:
    for line in body.splitlines():
        folded = _one_line(line)
        if folded:
            return folded
    return ""


@functools.lru_cache(maxsize=8)
def _ref_patterns(prefix: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(`SP-42:` at the head, `[SP-42]`/`[#42]`/`(SP-42)` anywhere) for a ticket prefix."""
    escaped = re.escape(prefix)
    leading = re.compile(rf"^{_HEAD}{escaped}-(\d+)\s*[:：]\s*", re.IGNORECASE)
    bracketed = re.compile(
        rf"\[\s*(?:{escaped}-|#\s*)(\d+)\s*\]|\(\s*{escaped}-(\d+)\s*\)",
        re.IGNORECASE,
    )
    return leading, bracketed


def _strip_prefixes(title: str, removed: list[str] | None = None) -> str:
    wrapped = _WRAPPED_FORWARD.match(title)
    if wrapped:
        if removed is not None:
            removed.append(f"forward wrapper {title[: wrapped.start(1)].strip() + ' … ]'!r}")
        title = wrapped.group(1)
    prefixes = _LEADING_PREFIXES.match(title)
    if prefixes and removed is not None:
        removed.append(f"prefix {title[prefixes.end(1) : prefixes.end()].strip()!r}")
    return _LEADING_PREFIXES.sub(r"\1", title, count=1)


def _take_refs(
    title: str,
    leading: re.Pattern[str],
    bracketed: re.Pattern[str],
    refs: list[int],
    removed: list[str] | None = None,
) -> str:
    match = leading.match(title)
    if match:
        refs.append(int(match.group(2)))
        if removed is not None:
            removed.append(f"reference {title[match.end(1) : match.end()].strip()!r}")
        title = match.group(1) + title[match.end() :]

    def take(found: re.Match[str]) -> str:
        refs.append(int(found.group(1) or found.group(2)))
        if removed is not None:
            removed.append(f"reference {found.group(0)!r}")
        return " "

    return bracketed.sub(take, title)


def _take_tags(
    title: str,
    vocabulary: TagVocabulary,
    words: list[str],
    meanings: list[TagMeaning],
    removed: list[str] | None = None,
) -> str:
    def take(found: re.Match[str]) -> str:
        bracket_words = [word for word in _TAG_WORD_SEPARATORS.split(found.group(1)) if word]
        bracket_meanings = lookup_all(bracket_words, vocabulary)
        if bracket_meanings is None:
            return found.group(0)
        words.extend(word.lower() for word in bracket_words)
        meanings.extend(bracket_meanings)
        if removed is not None:
            removed.append(f"tag {found.group(0)!r}")
        return " "

    return _BRACKET.sub(take, title)
