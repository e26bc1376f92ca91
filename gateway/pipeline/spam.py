"""Spam verdicts of the deployment's own filter (SPEC §11 "Spam"): `security.spam_headers`.

Only the mail's own header section counts (a verdict quoted in a forwarded message is about that
message), and the match is on the verdict word, so SpamAssassin's `X-Spam-Status: Yes, score=7.1 ...`
matches a configured `X-Spam-Status: Yes`. A sender who writes such a header themselves only holds
up their own mail; one who writes `X-Spam-Flag: NO` cannot hide the filter's `YES` beside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# What may follow the verdict word in the header value: nothing, or a separator before details.
_AFTER_VERDICT = re.compile(r"$|[\s,;(]")


def spam_verdict(fields: Sequence[tuple[str, str]], spam_headers: Iterable[tuple[str, str]]) -> str | None:
    """The first configured "Name: value" verdict in `fields` (lower-case names), as written; or None."""
    wanted = tuple(spam_headers)
    for name, value in fields:
        folded = " ".join(value.split()).lower()
        for spam_name, spam_value in wanted:
            verdict = name == spam_name and folded.startswith(spam_value)
            if verdict and _AFTER_VERDICT.match(folded, len(spam_value)):
                return f"{name}: {' '.join(value.split())}"[:200]
    return None
