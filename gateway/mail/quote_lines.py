"""Reading a body as lines for reply trimming (gateway/mail/quotes.py): what counts as blank, as a quote
line, and the private-use marks the HTML reading leaves in the text, which never reach the result."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Private-use characters mark what the HTML said about the text; they never reach the result.
CUT = "\ue000"  # quoted history starts here, whatever follows
ATTRIBUTION_START = "\ue001"  # an attribution line ("On … wrote:") in any language
ATTRIBUTION_END = "\ue002"
MARKS = CUT + ATTRIBUTION_START + ATTRIBUTION_END
UNMARK = str.maketrans("", "", MARKS)

# Bidi controls (Hebrew and Arabic clients wrap names and addresses in them) count as space too.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
INVISIBLE = " \t\xa0\u200b\u200c\u200d\ufeff" + _BIDI + ATTRIBUTION_END
STRIP_BIDI = str.maketrans("", "", _BIDI)
# Where the HTML layout left a mark inside a line: a cut stands alone, an attribution starts a line.
_MARK_SPLIT = re.compile(f"[ \t]*(?={CUT}|{ATTRIBUTION_START})|(?<={CUT}|{ATTRIBUTION_END})[ \t]*")


def split_lines(text: str) -> list[str]:
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        # Marks inside a quote belong to the quoted mail; they stay where they are and count for nothing.
        if any(mark in line for mark in MARKS) and not is_quote(line):
            lines.extend(part for part in _MARK_SPLIT.split(line) if part)
        else:
            lines.append(line)
    return lines


def output(lines: Sequence[str], *, rendered: bool) -> str:
    # A line that held only a mark is the HTML's, not the sender's.
    kept = [
        line.translate(UNMARK).rstrip() if rendered else line.translate(UNMARK)
        for line in lines
        if not (any(mark in line for mark in MARKS) and not line.strip(MARKS + " \t"))
    ]
    return "\n".join(kept).strip("\n")  # blank lines at the ends go, the first line's indent stays


def is_blank(line: str) -> bool:
    return not line.strip(INVISIBLE)


def is_quote(line: str) -> bool:
    return line.lstrip(INVISIBLE).startswith(">")
