"""The first bare `local@domain` token in free text, found in time linear in the text's length.

A header that holds no parseable address ("Maria maria@customer.example", garbage around an
address) still names its sender; a regular expression searched over the whole value backtracks
from every start position, so a 20 KB header without an `@` cost seconds of CPU (found by the
pipeline's property tests). Here each `@` is expanded to the left and right instead.
"""

from __future__ import annotations

import re

# What may stand in an address token: anything but white space, angle brackets, quotes and the
# separators of address lists. The local part (read backwards from the `@`) holds no `@` itself.
_LOCAL_REVERSED = re.compile(r"[^\s<>\"'(),;:\[\]@]+")
_DOMAIN = re.compile(r"[^\s<>\"'(),;:\[\]]+")


def first_address_token(text: str) -> tuple[int, str] | None:
    """Where the first `local@domain` token in `text` starts, and the token; None without one."""
    at = text.find("@")
    while at != -1:
        local = _LOCAL_REVERSED.match(text[at - 1 :: -1]) if at > 0 else None
        domain = _DOMAIN.match(text, at + 1)
        if local and domain:
            start = at - local.end()
            return start, text[start : domain.end()]
        at = text.find("@", at + 1)
    return None
