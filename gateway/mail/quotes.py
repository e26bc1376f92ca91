"""The new part of a reply (SPEC §4): what the sender wrote, less quoted history, signature and boilerplate.

Measured against mail-parser-reply and email-reply-parser on the shared corpus (bench/trimming_rate.py):
both fall far short (under two thirds of the corpus), drop sign-offs such as "Thanks,\\nAlex" that SPEC §4
keeps, and know few of the languages mail arrives in; this module is our own. It reads the body as lines:

- quoted history starts at a quote header ("On … wrote:" in some forty languages, also wrapped over
  several lines; date-first headers of Gmail, Yandex, mail.ru, mutt; in a language we know no word of,
  an address in brackets with a date, a time and a closing colon), an Outlook ``From:/Sent:`` block (its
  translations, fields wrapped or a blank line apart, or flattened onto one line),
  ``-----Original Message-----`` (translations, any decoration of signs), a forward marker, ticketgate's
  own ``REPLY_MARKER`` or another desk's "reply above this line"; that header and everything after go;
- the rules are written for families of mail, not for samples: each family has tests built from our own
  examples (tests/unit/test_quotes_families.py), and the corpus is split into a tuning half, looked at
  while writing rules, and a checking half, only counted (bench/corpus_halves.py,
  docs/performance/mail-reading.md);
- a header followed by a ``>`` block and then new text is an inline answer: under the sender's own
  opening the header line goes and the quotes and answers stay (issue 23); at the very top of the mail
  with more quotes among the answers it stays as written; with one quote and then only the answer it
  is a bottom-post: the header and that quote go, the answer stays;
- a header with nothing above it that is not followed by ``>`` lines (Gmail's unquoted bottom-post) is
  dropped and what follows is read as the message; a forward with nothing above it is kept whole
  (forwarding is how people hand us a mail: for a forward the new text is what was written above it),
  and its forwarded text is named apart, for the ticket's description;
- then the end is cleaned: trailing ``>`` lines, a signature after a ``-- `` line, and mobile/client
  boilerplate ("Sent from my iPhone", "Get Outlook for Android", "Von meinem iPhone gesendet" …, but not
  a sentence that goes on after it: "Sent from my iPhone, the upload fails").

The modules: which text is read (quote_html), its lines (quote_lines), the quote headers
(quote_headers), the end of the new part (reply_end); this one is the walk that decides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.domain import REPLY_MARKER
from gateway.mail.quote_headers import Header, Kind, find_headers, is_field_line
from gateway.mail.quote_html import choose_source
from gateway.mail.quote_lines import INVISIBLE, is_blank, is_quote, output, split_lines
from gateway.mail.reply_end import trim_end

__all__ = ["REPLY_MARKER", "TrimmedReply", "trim_reply"]


@dataclass(frozen=True)
class TrimmedReply:
    """The new part of a reply, and what was cut from it."""

    text: str  # the new part, stripped of leading/trailing blank lines
    removed: str  # what was cut (quote, signature, boilerplate), for debugging
    # When the new part is a forward with nothing written above it: the forwarded mail's own text, its
    # marker and header block left out (the ticket's description shows it; ``text`` keeps the whole).
    forwarded: str | None = None


def trim_reply(text: str, *, html: str | None = None) -> TrimmedReply:
    """The new part of a reply body; ``html`` is used when ``text`` is empty or only rendered from it."""
    source = choose_source(text, html)
    lines = split_lines(source)
    cut = _find_marker(lines)
    part = _Scan(_rewrapped_quotes(lines[:cut])).new_part(0)
    # The sender's lines stay as written; the spaces a rendering of HTML leaves at line ends are noise.
    rendered = source is not text
    kept = part.kept()
    chosen = set(kept)
    removed = [line for index, line in enumerate(lines) if index not in chosen]
    forwarded = None
    if part.forwarded is not None:
        forwarded = output([lines[index] for index in part.forwarded.kept()], rendered=rendered) or None
    return TrimmedReply(
        text=output([lines[index] for index in kept], rendered=rendered),
        removed=output(removed, rendered=rendered),
        forwarded=forwarded,
    )


# Other help desks' markers ("##- Please type your reply above this line -##"): the same meaning.
_ABOVE_THIS_LINE = re.compile(
    r"\b(?:reply|respond|write|type|answer)\b.{0,40}\babove\s+this\s+line\b"
    r"|\b(?:oberhalb|über)\s+dieser\s+zeile\b|\bau-dessus\s+de\s+cette\s+ligne\b"
    r"|\bencima\s+de\s+esta\s+línea\b|\bsopra\s+questa\s+riga\b|\bboven\s+deze\s+regel\b"
    r"|\bacima\s+desta\s+linha\b",
    re.IGNORECASE,
)


def _find_marker(lines: Sequence[str]) -> int:
    """Index of the line with ticketgate's reply marker, or another desk's (quoted or not), or the end."""
    marker = REPLY_MARKER.casefold()
    for index, line in enumerate(lines):
        if marker in line.casefold() or (len(line) <= 100 and _ABOVE_THIS_LINE.search(line)):
            return index
    return len(lines)


# A client that re-wraps a quote at its own width leaves the end of a long quoted line on a line of its own,
# without ">" ("> … pharetra d" / "ignissim odio?" / "> …"): a short fragment that goes on in lower case,
# right above more quote, whose first word would not have fitted on the quoted line above it at the
# narrowest width clients wrap at (68–80 columns; 72 and 76 are the common ones). It is quote, not an
# inline answer. The test is on the first word, not on the quoted line's length alone: a word-wrapping
# client at 72 columns leaves quoted lines as short as 72 minus the longest word (a length floor of 65
# missed 1 in 7 such quotes at 72 columns and most at 70, in the generated mails of
# tests/unit/test_quotes_properties.py).
_NARROWEST_WRAP = 66
_MAX_FRAGMENT = 40


def _rewrapped_quotes(lines: Sequence[str]) -> list[str]:
    """``lines`` with such fragments marked as quote; the indexes stay, the output is read from ``lines``."""
    scan = list(lines)
    for index in range(1, len(lines) - 1):
        above, line, below = lines[index - 1], lines[index], lines[index + 1]
        text = line.strip(INVISIBLE)
        words = text.split()
        if (
            text[:1].islower()
            and len(text) <= _MAX_FRAGMENT
            and not is_quote(line)
            and is_quote(above)
            and is_quote(below)
            and len(above.strip(INVISIBLE)) + 1 + len(words[0]) > _NARROWEST_WRAP
        ):
            scan[index] = "> " + line
    return scan


def _is_signature_delimiter(line: str) -> bool:
    # "-- " by the standard; many clients and editors drop the trailing space, so "--" alone counts too.
    # "--" inside prose ("yes -- tomorrow") or a "-- item" list is not a delimiter.
    # A dash alone ("—", "–", as macOS may turn a typed "--") is not one: people draw section breaks with it.
    return line.strip(INVISIBLE) == "--"


# --- the scan -----------------------------------------------------------------------------------------


# Ranges of lines dropped from inside a new part, as a chain ``((first, after), rest)`` or ``()``: each
# level of answers adds one link, so a mail of many inline answers builds it in linear time.
_Dropped = tuple[()] | tuple[tuple[int, int], "_Dropped"]


@dataclass(frozen=True)
class _Part:
    """The new part of some lines: ``[start, end)``, less the ``dropped`` ranges inside it; ``forwarded``,
    when the part is a forward with nothing written above it, is the range of the forwarded text."""

    start: int
    end: int
    dropped: _Dropped = ()
    forwarded: _Part | None = None

    def kept(self) -> list[int]:
        """The indexes of the lines in the new part, in order."""
        dropped: set[int] = set()
        chain = self.dropped
        while chain:
            (first, after), chain = chain
            dropped.update(range(first, after))
        return [index for index in range(self.start, self.end) if index not in dropped]


class _Scan:
    """Finds the new part of ``lines``: reads top-down to the first header that starts quoted history."""

    def __init__(self, lines: Sequence[str]) -> None:
        self._lines = lines
        self._headers = find_headers(lines)
        self._memo: dict[int, _Part] = {}
        # A header's decision needs the new part of the lines after it; working out those suffixes
        # last-first keeps the recursion one level deep, however many headers a mail has.
        for position in sorted(self._suffixes_needed(), reverse=True):
            self.new_part(position)

    def _suffixes_needed(self) -> set[int]:
        needed = set()
        for header in self._headers.values():
            needed.add(header.end)
            quote = self._quote_after(header)
            if quote is not None:
                needed.add(quote)
            if header.kind is Kind.FORWARD:
                needed.add(self._forwarded_text_start(header))
        return needed

    def _quote_after(self, header: Header) -> int | None:
        """Where the ``>`` block right after an attribution header ends, if there is one."""
        if header.kind is not Kind.ATTRIBUTION:
            return None
        lines = self._lines
        position = header.end
        while position < len(lines) and is_blank(lines[position]):
            position += 1
        if position == len(lines) or not is_quote(lines[position]):
            return None
        end = position
        while position < len(lines) and (is_quote(lines[position]) or is_blank(lines[position])):
            if is_quote(lines[position]):
                end = position + 1
            position += 1
        return end

    def _after_blanks(self, position: int) -> int:
        while position < len(self._lines) and is_blank(self._lines[position]):
            position += 1
        return position

    def _forwarded_text_start(self, header: Header) -> int:
        """Where the forwarded mail's own text starts: after the forward marker and the header block
        (From:/Date:/Subject: …) under it, if there is one."""
        position = self._after_blanks(header.end)
        block = self._headers.get(position)
        if block is not None and block.kind is Kind.BLOCK:
            return block.end
        # Fields too few to be a block on their own ("Subject: …" and "Date: …"): under a forward
        # marker, the lines up to the first blank one are the forwarded mail's header.
        lines = self._lines
        if position < len(lines) and is_field_line(lines[position]):
            while position < len(lines) and not is_blank(lines[position]):
                position += 1
            return position
        return header.end

    def new_part(self, begin: int) -> _Part:
        """The new part of ``lines[begin:]``."""
        if begin not in self._memo:
            part = self._read(begin)
            start, end = trim_end(self._lines, part.start, part.end)
            self._memo[begin] = _Part(start, end, part.dropped, part.forwarded)
        return self._memo[begin]

    def _read(self, begin: int) -> _Part:
        lines = self._lines
        seen = False  # anything above the current line but blanks
        for index in range(begin, len(lines)):
            header = self._headers.get(index)
            if header is None:
                line = lines[index]
                if is_blank(line):
                    continue
                if not is_quote(line) and _is_signature_delimiter(line):
                    return _Part(begin, index)
                seen = True
                continue
            if header.kind is Kind.CUT:
                return _Part(begin, index)
            if header.kind is Kind.FORWARD:
                if seen:
                    return _Part(begin, index)
                # Kept whole (forwarding is how people hand us a mail); the forwarded text is noted.
                forwarded = self.new_part(self._forwarded_text_start(header))
                return _Part(begin, len(lines), forwarded=forwarded)
            quote_end = self._quote_after(header)
            if quote_end is not None:
                rest = self.new_part(quote_end)
                if rest.start == rest.end:
                    return _Part(begin, index)  # header, quote, nothing new after: history
                if seen:
                    # Answers under the sender's own opening: the attribution line goes, quotes stay.
                    dropped = (header.start, self._after_blanks(header.end))
                    return _Part(begin, rest.end, (dropped, rest.dropped))
                if any(is_quote(line) for line in lines[rest.start : rest.end]):
                    return _Part(begin, rest.end, rest.dropped)  # inline answers from the top: as written
                return rest  # a bottom-post: the header and the quote go
            if seen:
                return _Part(begin, index)
            return self.new_part(header.end)  # a header at the very top: the message follows it
        return _Part(begin, len(lines))
