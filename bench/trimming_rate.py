"""Print the exact-match rate of reply trimming per corpus set: ticketgate's and the libraries' we measured.

Run from the project root: ``.venv/bin/python bench/trimming_rate.py [--corpus DIR] [--failures]``.
The cases and what counts as a match are the corpus tests' own (tests/integration/test_corpus_quotes.py).
The libraries read text only, so for HTML bodies they get ticketgate's HTML-to-text conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it

from gateway.pipeline.html_text import html_to_text  # noqa: E402
from gateway.pipeline.quotes import trim_reply  # noqa: E402
from tests.integration.test_corpus_quotes import (  # noqa: E402
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


CANDIDATES: dict[str, Trimmer] = {
    "email-reply-parser": email_reply_parser,
    "mail-parser-reply": mail_parser_reply,
    "ticketgate": ticketgate,
}


def _judge(trimmer: Trimmer, case: Case) -> bool:
    try:
        return case.matches(trimmer(case.text, case.html), case.expected)
    except Exception:  # a library that crashes on a mail fails that mail
        return False


def _report(title: str, cases: list[Case], show_failures: bool) -> None:
    sets = sorted({case.set_name for case in cases}, key=[c.set_name for c in cases].index)
    print(f"\n{title}")
    print(f"{'candidate':<20}" + "".join(f"{name:>20}" for name in [*sets, "overall"]))
    for label, trimmer in CANDIDATES.items():
        verdicts = [(case, _judge(trimmer, case)) for case in cases]
        cells = []
        for name in [*sets, "overall"]:
            mine = [ok for case, ok in verdicts if name in (case.set_name, "overall")]
            cells.append(f"{sum(mine)}/{len(mine)} {sum(mine) / len(mine):6.1%}")
        print(f"{label:<20}" + "".join(f"{cell:>20}" for cell in cells))
        if show_failures:
            for case, ok in verdicts:
                if not ok:
                    print(f"    fails: {case.set_name}/{case.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = os.environ.get("TICKETGATE_CORPUS", str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=Path(default))
    parser.add_argument("--failures", action="store_true", help="list the mails each candidate fails")
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
