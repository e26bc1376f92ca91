"""The ticket's description (SPEC §1): the first message's cleaned text, tidied, capped at a word boundary."""

from __future__ import annotations

import re
import unicodedata

ELLIPSIS = "…"

# Characters that take room without showing: no-break and zero-width spaces, byte-order marks.
_INVISIBLE = str.maketrans({"\xa0": " ", "\u200b": None, "\u200c": None, "\ufeff": None})
_BLANK_RUN = re.compile(r"\n{3,}")
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")
# Never cut between a character and what joins or modifies it: a combining accent, an emoji's
# zero-width joiner or variation selector.
_JOINERS = "\u200d\ufe0e\ufe0f"


def make_description(text: str, *, limit: int = 500) -> str:
    """``text`` tidied (line ends unified, trailing spaces and runs of blank lines gone) and, when longer
    than ``limit`` characters, cut at the last word boundary that fits, with "…"; never over ``limit``."""
    if limit < 1:
        raise ValueError(f"limit must be positive, not {limit}")
    tidy = _tidy(text)
    if len(tidy) <= limit:
        return tidy
    room = limit - len(ELLIPSIS)
    if tidy[room].isspace():
        head = tidy[:room]  # the cut falls right after a word
    else:
        space = _LAST_SPACE.search(tidy, 0, room)
        # One word longer than the whole description (a URL, a token): cut inside it.
        head = tidy[: space.start()] if space and space.start() > 0 else _cut_inside_word(tidy, room)
    return head.rstrip() + ELLIPSIS


def _tidy(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE).split("\n")
    return _BLANK_RUN.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def _cut_inside_word(text: str, room: int) -> str:
    end = room
    while end > 0 and (unicodedata.combining(text[end]) or text[end] in _JOINERS):
        end -= 1
    return text[:end] if end > 0 else text[:room]
