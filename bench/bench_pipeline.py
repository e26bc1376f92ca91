"""The processing pipeline alone: parse -> classify -> ticket, over the corpus, on a fresh SQLite.

Run from the project root: ``.venv/bin/python bench/bench_pipeline.py [--rounds 3] [--synthetic 1000]``.
The mails are put in the inbox first (not timed); then one processor drains it with
`Processor.process_available`, as the daemon's worker does. Each round starts on a fresh database,
so nothing is a duplicate of an earlier round. `--synthetic N` also runs N generated mails (the
end-to-end benchmark's own, see bench_intake.py), so the two benchmarks can be compared.
No figure here is asserted anywhere: this is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_intake import machine, write_config  # noqa: E402
from intake_mails import DEFAULT_MIX, make_mails, parse_mix  # noqa: E402

from gateway.config import load_settings  # noqa: E402
from gateway.daemon.runtime import build_runtime  # noqa: E402
from gateway.domain import Envelope  # noqa: E402
from gateway.mail.parse import parse_mail  # noqa: E402

ENVELOPE = Envelope(
    mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
)


@dataclass(frozen=True)
class Round:
    mails: int
    seconds: float
    cpu_seconds: float
    outcomes: Counter[str]


def corpus_mails(corpus: Path) -> list[bytes]:
    """Every whole mail in the corpus (*.eml), read as bytes."""
    return [path.read_bytes() for path in sorted(corpus.rglob("*.eml"))]


def run_round(mails: Sequence[bytes], batch: int) -> Round:
    """Store `mails` in a fresh inbox, then time one processor draining it."""
    workdir = Path(tempfile.mkdtemp(prefix="tg-pipeline-"))
    try:
        config = write_config(workdir, f"sqlite:///{workdir / 'ticketgate.db'}", port=2525, workers=1)
        runtime = build_runtime(load_settings(config))
        try:
            for start in range(0, len(mails), 500):
                runtime.inbox.add_many([(raw, ENVELOPE) for raw in mails[start : start + 500]])
            processor = runtime.processor("bench")
            outcomes: Counter[str] = Counter()
            cpu_before = time.process_time()
            started = time.perf_counter()
            while results := processor.process_available(limit=batch):
                outcomes.update(result.outcome.value for result in results)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_before
        finally:
            runtime.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Round(sum(outcomes.values()), seconds, cpu, outcomes)


def parse_only(mails: Sequence[bytes]) -> float:
    """Mails/s of the parse stage alone (mail-parser and our clean-up), which needs no database."""
    started = time.perf_counter()
    for raw in mails:
        # A corpus mail that does not parse still cost its time (the processor quarantines it).
        with contextlib.suppress(Exception):
            parse_mail(raw)
    return len(mails) / (time.perf_counter() - started)


def report(label: str, mails: Sequence[bytes], rounds: int, batch: int) -> None:
    results = [run_round(mails, batch) for _ in range(rounds)]
    rates = [r.mails / r.seconds for r in results]
    best = max(results, key=lambda r: r.mails / r.seconds)
    median_cpu_ms = statistics.median(r.cpu_seconds * 1000 / max(1, r.mails) for r in results)
    size = sum(map(len, mails)) // max(1, len(mails))
    print(f"pipeline {label}: {len(mails)} mails (mean {size} bytes), {rounds} round(s) on fresh SQLite")
    print(
        f"  pipeline rate:  {statistics.median(rates):.0f} mails/s median "
        f"(rounds: {', '.join(f'{rate:.0f}' for rate in rates)}), cpu {median_cpu_ms:.2f} ms per mail"
    )
    print(f"  parse only:     {parse_only(mails):.0f} mails/s")
    print(f"  outcomes:       {dict(best.outcomes)}")


def main(argv: Sequence[str] | None = None) -> int:
    default_corpus = Path(os.environ.get("TICKETGATE_CORPUS", ROOT.parent / "shared" / "corpus"))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=default_corpus, help=f"default {default_corpus}")
    parser.add_argument("--rounds", type=int, default=3, help="fresh-database rounds per set (default 3)")
    parser.add_argument("--batch", type=int, default=16, help="claim size, as the daemon (default 16)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="also run N generated mails")
    parser.add_argument("--size-kb", type=int, default=1, help="size of the generated mails (default 1)")
    parser.add_argument(
        "--mix", default=DEFAULT_MIX, help=f"kinds of generated mails (default {DEFAULT_MIX})"
    )
    parser.add_argument(
        "--senders", type=int, default=500, help="distinct senders of the generated mails (default 500)"
    )
    args = parser.parse_args(argv)
    # mail-parser warns about every MIME part it leaves to us, as the CLI says; not news here either.
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    print(f"machine: {machine()}")
    if not args.corpus.is_dir():
        print(f"corpus not found at {args.corpus}: give --corpus or set TICKETGATE_CORPUS", file=sys.stderr)
        return 2
    report(f"corpus {args.corpus}", corpus_mails(args.corpus), args.rounds, args.batch)
    if args.synthetic:
        mails = make_mails(
            args.synthetic, args.size_kb * 1024, parse_mix(args.mix), f"pipeline-{os.getpid()}", args.senders
        )
        label = f"synthetic ~{args.size_kb} KB, mix {args.mix}, {args.senders} sender(s)"
        report(label, mails, args.rounds, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
