"""Real-world mail, measured: every rt and mail-gem mail through the whole pipeline, per folder and half.

Run from the project root: ``.venv/bin/python bench/corpus_report.py [--corpus DIR] [--failures]
[--half tuning|checking|both]``. Each folder is split by bench/corpus_halves.py (sorted files: even
positions tune, odd positions check). Write rules looking at ``--half tuning --failures`` only; the
checking half then says whether they generalise. tests/integration/test_corpus_report.py asserts the
targets on both halves with the same code.

Each folder runs in its own fresh store (SQLite in a temporary folder), in-process, fed as the pipe
intake feeds it (no envelope sender, so the `Return-Path` stands in for it). For each mail the report
records what a user would see: the outcome, and for a ticket its title and requester. A mail fails
the targets when it is quarantined (an exception), refused as "not a mail" (pipe exit 65), gets
`unknown@invalid` although a From, Sender, Reply-To or Return-Path header names an address, or gets a
title with mojibake or a reply/forward prefix left at its start.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it

from bench.corpus_halves import halves  # noqa: E402
from gateway.config import settings_from_mapping  # noqa: E402
from gateway.daemon.runtime import build_runtime  # noqa: E402
from gateway.domain import Envelope  # noqa: E402
from gateway.errors import NotAMailError  # noqa: E402
from gateway.intake.pipe import read_inputs  # noqa: E402
from gateway.mail.parse import parse_mail  # noqa: E402
from gateway.pipeline.new_ticket_plan import UNKNOWN_SENDER, plan_new_ticket  # noqa: E402
from gateway.store.db import unit_of_work  # noqa: E402
from gateway.store.models import Ticket  # noqa: E402

# The folders the targets hold for, and the bounces folder, which is measured by recognition only.
FOLDERS: dict[str, str] = {
    "rt": "rt/t/data/emails/**/*",
    "mail-gem": "mail-gem/spec/fixtures/emails/**/*.eml",
}
BOUNCES = "bounces/*.eml"
GOOD_OUTCOMES = frozenset({"ticket", "reply", "bounce", "auto_reply", "duplicate", "abuse_report"})
SUPPORT = "support@smilepass.example"
_SECRET = "corpus-report-secret-not-for-production-0123456789"

# --- the checks on a title ---------------------------------------------------------------------------

_C1_CONTROLS = re.compile("[\x80-\x9f]")
_LATIN1_SUPPLEMENT = re.compile("[\u00a0-\u00ff]")
# Latin-1 characters no Western word uses, but which other charsets' letters become when read as
# Latin-1: Cyrillic "р" and Greek "π" turn into "ð", Big5 and GBK lead bytes into "¤", "¡", "ª"...
_RARE_IN_WESTERN_TEXT = re.compile("[\u00a1-\u00bf\u00d0\u00d7\u00de\u00f0\u00f7\u00fe]")
# Known reply/forward prefix words followed by an optional counter, optional spaces and a colon. Kept
# apart from gateway/mail/subject.py on purpose: the measure must not share the rule it measures.
_PREFIX_LEFT = re.compile(
    r"^\s*(?:re|aw|sv|vs|wg|fwd?|tr|rif|odp|pd|ynt|antw|antwort|réf|rép|enc|res|rv|vá|atb|"
    r"回复|回覆|答复|转发|轉發|返信|転送|회신|전달|отв|ответ|пересл)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]",
    re.IGNORECASE,
)


def mojibake(title: str) -> str | None:
    """Why a title looks like text decoded in the wrong charset, or None.

    Signs: U+FFFD (bytes that decoded to nothing), C1 control characters (bytes 0x80-0x9F read as
    Latin-1), a title that turns into different valid UTF-8 when encoded back to windows-1252 or
    Latin-1 (UTF-8 read as a Western charset: "FÃ¼r"), and a title whose letters are mostly from the
    Latin-1 supplement and hold one that no Western word uses (Cyrillic, Greek, CJK bytes read as
    Latin-1: "Ïðèâåò"); Western text is mostly ASCII letters, and a test line of umlauts
    ("äöüßÄÖÜß") uses only letters, so no real title in a Latin script trips that.
    """
    if "\ufffd" in title:
        return "U+FFFD replacement character"
    if _C1_CONTROLS.search(title):
        return "C1 control character"
    for codec in ("cp1252", "latin-1"):
        try:
            again = title.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
        if again != title:
            return f"UTF-8 read as {codec}: would be {again!r}"
    letters = [char for char in title if char.isalpha()]
    high = [char for char in letters if _LATIN1_SUPPLEMENT.match(char)]
    if len(high) >= 3 and len(high) * 2 >= len(letters) and _RARE_IN_WESTERN_TEXT.search(title):
        return "mostly Latin-1 supplement letters: another charset read as Latin-1"
    return None


def prefix_left(title: str) -> str | None:
    """The reply/forward prefix a title still starts with, or None."""
    match = _PREFIX_LEFT.match(title)
    return match.group(0).strip() if match else None


_ADDRESS = re.compile(r"[^\s<>\"'(),;:@\[\]]+@[^\s<>\"'(),;:@\[\]]+")


def named_address(raw: bytes) -> str | None:
    """The first address a From, Sender, Reply-To or Return-Path header names, or None.

    Read with the standard library parser rather than ours, so a parser bug cannot hide the case.
    """
    from email import message_from_bytes
    from email.policy import compat32

    try:
        message = message_from_bytes(raw, policy=compat32)
    except Exception:  # a parser that breaks on the mail cannot name an address either
        return None
    for name in ("from", "sender", "reply-to", "return-path"):
        for value in message.get_all(name, []) or []:
            text = str(value).encode("utf-8", "surrogateescape").decode("ascii", "replace")
            if match := _ADDRESS.search(text):
                return match.group(0)
    return None


# --- running a folder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailResult:
    folder: str
    half: str  # "tuning" or "checking"
    name: str  # the file, relative to the corpus
    outcome: str  # an inbox outcome, or "not a mail" (pipe exit 65)
    title: str | None = None
    requester: str | None = None
    detail: str = ""  # the processing result's detail (a quarantine's reason)
    problems: tuple[str, ...] = ()


def corpus_files(corpus: Path, pattern: str) -> list[Path]:
    return [path for path in corpus.glob(pattern) if path.is_file()]


def _settings(workdir: Path):  # type: ignore[no-untyped-def]
    return settings_from_mapping(
        {
            "gateway": {"addresses": [SUPPORT], "ticket_prefix": "SP", "secret": _SECRET},
            "database": {"url": f"sqlite:///{workdir / 'corpus.db'}"},
            "storage": {"blob_dir": str(workdir / "blobs")},
        },
        environ={},
    )


def run_folder(corpus: Path, folder: str, pattern: str) -> list[MailResult]:
    """Every file of one folder through pipe intake and the pipeline, in a store of its own."""
    tuning, checking = halves(corpus_files(corpus, pattern))
    half_of = {path: "tuning" for path in tuning} | {path: "checking" for path in checking}
    paths = sorted(half_of)
    envelope = Envelope(mail_from="", rcpt_tos=(SUPPORT,), source="pipe")
    results: list[MailResult] = []
    with tempfile.TemporaryDirectory(prefix="corpus-report-") as workdir:
        settings = _settings(Path(workdir))
        runtime = build_runtime(settings)
        processor = runtime.processor("corpus-report")
        try:
            for path in paths:
                name = str(path.relative_to(corpus))
                [read] = read_inputs([str(path)], [], io.BytesIO())
                if read.raw is None:
                    results.append(
                        MailResult(folder, half_of[path], name, "not a mail", detail=read.problem or "")
                    )
                    continue
                [inbox_id] = runtime.inbox.add_many([(read.raw, envelope)])
                [result] = processor.process_ids([inbox_id])
                title, requester = _what_a_user_sees(runtime, settings, read.raw, envelope, result)
                results.append(
                    MailResult(
                        folder,
                        half_of[path],
                        name,
                        result.outcome.value,
                        title=title,
                        requester=requester,
                        detail=result.detail,
                    )
                )
        finally:
            runtime.close()
    return [_judged(result, corpus) for result in results]


def _what_a_user_sees(
    runtime, settings, raw: bytes, envelope: Envelope, result
) -> tuple[str | None, str | None]:  # type: ignore[no-untyped-def]
    """The ticket's title and requester; for a mail that joined or made none, what it would have made."""
    if result.outcome.value == "ticket" and result.ticket_id is not None:
        with unit_of_work(runtime.inbox.sessions) as session:
            ticket = session.get(Ticket, result.ticket_id)
            assert ticket is not None
            return ticket.title, ticket.requester_address
    if result.outcome.value in ("quarantine", "retry"):
        return None, None
    try:
        plan = plan_new_ticket(parse_mail(raw), envelope, settings=settings, ours=runtime.deps.ours)
    except NotAMailError:
        return None, None
    return plan.title, plan.requester.address


def _judged(result: MailResult, corpus: Path) -> MailResult:
    problems: list[str] = []
    if result.outcome == "not a mail":
        problems.append(f"not a mail (exit 65): {result.detail}")
    elif result.outcome not in GOOD_OUTCOMES:
        problems.append(f"{result.outcome}: {result.detail.splitlines()[0] if result.detail else ''}")
    if result.requester == UNKNOWN_SENDER and (address := named_address((corpus / result.name).read_bytes())):
        problems.append(f"{UNKNOWN_SENDER} although a header names {address}")
    if result.title is not None and result.outcome in ("ticket", "reply"):
        if why := mojibake(result.title):
            problems.append(f"mojibake in title {result.title!r}: {why}")
        if prefix := prefix_left(result.title):
            problems.append(f"prefix {prefix!r} left in title {result.title!r}")
    return MailResult(**{**result.__dict__, "problems": tuple(problems)})


def measure(corpus: Path, folders: dict[str, str] = FOLDERS) -> list[MailResult]:
    return [result for folder, pattern in folders.items() for result in run_folder(corpus, folder, pattern)]


# --- the report --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    folder: str
    half: str
    count: int
    outcomes: dict[str, int]
    exceptions: int
    not_a_mail: int
    unknown_requester: int
    mojibake: int
    prefixes: int
    failing: int


def rows(results: Sequence[MailResult]) -> list[Row]:
    table = []
    for folder in dict.fromkeys(r.folder for r in results):
        for half in ("tuning", "checking"):
            mine = [r for r in results if r.folder == folder and r.half == half]

            def count(word: str, mine: list[MailResult] = mine) -> int:
                return sum(any(p.startswith(word) or word in p for p in r.problems) for r in mine)

            table.append(
                Row(
                    folder=folder,
                    half=half,
                    count=len(mine),
                    outcomes=dict(Counter(r.outcome for r in mine).most_common()),
                    exceptions=sum(r.outcome in ("quarantine", "retry") for r in mine),
                    not_a_mail=sum(r.outcome == "not a mail" for r in mine),
                    unknown_requester=count(UNKNOWN_SENDER),
                    mojibake=count("mojibake"),
                    prefixes=count("prefix "),
                    failing=sum(bool(r.problems) for r in mine),
                )
            )
    return table


def print_report(results: Sequence[MailResult], *, failures: bool, half: str) -> None:
    header = (
        f"{'folder':<10}{'half':<10}{'mails':>6}{'good':>6}{'except':>8}{'exit65':>8}"
        f"{'unknown':>9}{'mojibake':>10}{'prefix':>8}  outcomes"
    )
    print(header)
    print("-" * len(header))
    for row in rows(results):
        good = row.count - row.failing
        print(
            f"{row.folder:<10}{row.half:<10}{row.count:>6}{good:>6}{row.exceptions:>8}{row.not_a_mail:>8}"
            f"{row.unknown_requester:>9}{row.mojibake:>10}{row.prefixes:>8}  {row.outcomes}"
        )
    if failures:
        for result in results:
            if result.problems and half in ("both", result.half):
                print(f"  {result.half:<8} {result.name}: {'; '.join(result.problems)}")


def bounce_recognition(corpus: Path) -> dict[str, tuple[int, int]]:
    """Per half of the bounces folder: (recognised as bounce, mails). Another engineer owns bounces."""
    results = run_folder(corpus, "bounces", BOUNCES)
    return {
        half: (
            sum(r.outcome == "bounce" for r in results if r.half == half),
            sum(r.half == half for r in results),
        )
        for half in ("tuning", "checking")
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = os.environ.get("TICKETGATE_CORPUS", str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--corpus", type=Path, default=Path(default))
    parser.add_argument("--failures", action="store_true", help="list each failing mail and why")
    parser.add_argument("--half", choices=("tuning", "checking", "both"), default="both")
    parser.add_argument("--no-bounces", action="store_true", help="skip the bounces folder's line")
    args = parser.parse_args(list(argv) if argv is not None else None)
    import logging

    logging.disable(logging.WARNING)  # quarantines are counted in the table, not logged per mail
    results = measure(args.corpus)
    print_report(results, failures=args.failures, half=args.half)
    if not args.no_bounces and (args.corpus / "bounces").is_dir():
        for half, (recognised, total) in bounce_recognition(args.corpus).items():
            print(f"bounces   {half:<10} recognised as bounce: {recognised}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
