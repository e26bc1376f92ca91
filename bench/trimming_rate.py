"""Print the exact-match rate of reply trimming per corpus folder and half: ticketgate's and the libraries'.

Run from the project root: ``.venv/bin/python bench/trimming_rate.py [--corpus DIR] [--failures]``.
The cases and what counts as a match are the corpus tests' own (tests/integration/test_corpus_quotes.py),
and so is the split of each set into a tuning and a checking half (bench/corpus_halves.py): rules are
written looking at the tuning half only, and a gap between the halves is a rule fitted to examples.
``--failures`` lists the failing mails of the tuning half only, so that reading them cannot tune the
checking half; ``--failures=all`` lists both, for when the work is done.
The libraries (email-reply-parser, mail-parser-reply, quotequail; not dependencies: ``pip install``
them to compare) read text only, so for HTML bodies they get ticketgate's HTML-to-text conversion
(quotequail reads the HTML itself, with its ``quote_html``). quotequail's new part keeps the
attribution line above the quote, which SPEC §4 removes, so it rarely matches exactly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it

from gateway.mail.html_text import html_to_text  # noqa: E402
from gateway.mail.quotes import trim_reply  # noqa: E402
from tests.integration.test_corpus_quotes import (  # noqa: E402
    CHECKING,
    FOLDERS,
    TUNING,
    WHOLE,
    Case,
    all_cases,
    signature_cases,
    trimmer_cases,
)

Trimmer = Callable[[str, str | None], str]


def _text_of(text: str, html: str | None) -> str:
    return text if text.strip() or html is None else html_to_text(html)


def ticketgate(text: str, html: str | None) -> str:
    return trim_reply(text, html=html).text


def email_reply_parser(text: str, html: str | None) -> str:
    from email_reply_parser import EmailReplyParser

    return EmailReplyParser.parse_reply(_text_of(text, html))


def mail_parser_reply(text: str, html: str | None) -> str:
    from mailparser_reply import EmailReplyParser
    from mailparser_reply.constants import MAIL_LANGUAGES

    parser = EmailReplyParser(languages=list(MAIL_LANGUAGES))
    return parser.parse_reply(_text_of(text, html)) or ""


def quotequail_(text: str, html: str | None) -> str:
    import quotequail

    if html is not None and not text.strip():
        parts = quotequail.quote_html(html)
        return html_to_text("".join(part for new, part in parts if new))
    return "".join(part for new, part in quotequail.quote(text) if new)


CANDIDATES: dict[str, Trimmer] = {
    "email-reply-parser": email_reply_parser,
    "mail-parser-reply": mail_parser_reply,
    "quotequail": quotequail_,
    "ticketgate": ticketgate,
}


def _judge(trimmer: Trimmer, case: Case) -> bool:
    try:
        return case.matches(trimmer(case.text, case.html), case.expected)
    except Exception:  # a library that crashes on a mail fails that mail
        return False


def _available(label: str, trimmer: Trimmer) -> bool:
    try:
        trimmer("", None)
    except ImportError:
        print(f"({label} is not installed: left out)")
        return False
    return True


def _rows(cases: list[Case]) -> list[tuple[str, str, list[Case]]]:
    """(folder or set, half, cases): each folder by half, its sets by half under it, the unsplit sets
    whole, and the overall figure."""
    rows: list[tuple[str, str, list[Case]]] = []
    present = {case.set_name for case in cases}
    grouped: set[str] = set()
    for folder, sets in FOLDERS.items():
        if not present & set(sets):
            continue
        grouped |= set(sets)
        for half in (TUNING, CHECKING):
            rows.append((folder, half, [c for c in cases if c.set_name in sets and c.half == half]))
            if len(sets) > 1:
                for name in sets:
                    rows.append(
                        (f"  {name}", half, [c for c in cases if c.set_name == name and c.half == half])
                    )
    for name in sorted(present - grouped, key=[c.set_name for c in cases].index):
        mine = [c for c in cases if c.set_name == name]
        half = mine[0].half if len({c.half for c in mine}) == 1 else "all"
        rows.append((name, half if half != WHOLE else "whole", mine))
    if len(rows) > 1:
        rows.append(("overall", "all", cases))
    return rows


def _report(title: str, cases: list[Case], show_failures: str | None) -> None:
    candidates = {label: trimmer for label, trimmer in CANDIDATES.items() if _available(label, trimmer)}
    verdicts = {
        label: {id(case): _judge(trimmer, case) for case in cases} for label, trimmer in candidates.items()
    }
    print(f"\n{title}")
    print(f"{'folder':<22}{'half':<10}" + "".join(f"{label:>22}" for label in candidates))
    for name, half, mine in _rows(cases):
        cells = []
        for label in candidates:
            passed = sum(verdicts[label][id(case)] for case in mine)
            cells.append(f"{passed}/{len(mine)} {passed / len(mine):6.1%}" if mine else "-")
        print(f"{name:<22}{half:<10}" + "".join(f"{cell:>22}" for cell in cells))
    if show_failures is None:
        return
    for label in candidates:
        for case in cases:
            if not verdicts[label][id(case)] and (show_failures == "all" or case.half != CHECKING):
                print(f"    {label} fails: {case.set_name}/{case.name} ({case.half})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = os.environ.get("TICKETGATE_CORPUS", str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=Path(default))
    parser.add_argument(
        "--failures",
        nargs="?",
        const="tuning",
        choices=["tuning", "all"],
        help="list the mails each candidate fails: of the tuning half (default) or of both halves",
    )
    args = parser.parse_args()
    corpus: Path = args.corpus
    _report("Gated sets (SPEC §4 expectations)", all_cases(corpus), args.failures)
    _report(
        "reply-trimmer against its own files (keeps an all-quote reply)",
        list(trimmer_cases(corpus, spec=False)),
        args.failures,
    )
    _report(
        "signature bodies, SPEC: kept whole (no '-- ' delimiter in any)",
        list(signature_cases(corpus)),
        args.failures,
    )
    _report(
        "signature bodies, talon's expectation (name/phone signature removed; not a gate)",
        list(signature_cases(corpus, talon=True)),
        args.failures,
    )


if __name__ == "__main__":
    main()
