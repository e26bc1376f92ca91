"""Instructions per processed mail, counted by valgrind: a figure this noisy machine repeats exactly.

Run from the project root: ``.venv/bin/python bench/instructions_per_mail.py [--small 30 --large 130]``.
Wall-clock and CPU-time figures on this machine differ by up to 30 % between runs minutes apart
(docs/performance/index.md), which hides a change of a few per cent. `valgrind --tool=callgrind`
counts the instructions a process executes, the same count for the same code and input whatever
else the machine does. This counts processing alone (bench_pipeline.py's generated mails, put
in a fresh SQLite inbox by this script before valgrind starts, so neither building the mails nor
storing them is counted; one processor draining that inbox, batches always full: the write-lock
time bound is lifted, as under valgrind every mail would otherwise be a batch of its own) twice,
with `--small` and `--large` mails, and prints the difference divided by the difference in mails:
the cost of one more mail, without the start-up (imports, the schema) both runs share. Takes ~5 minutes; needs
valgrind (Debian: `apt-get install valgrind`). No figure here is asserted anywhere.

`--floor` also counts, the same way and on the same stored mails, what issue 24 measures processing
against: Python's email package parsing each mail with `policy.default` and reading From, To,
Subject, Date, Message-ID, the body and the attachments; and prints the ratio.

`--whole` counts the whole path instead, as issue 24 first defined it: each mail stored in the inbox
and processed the way `ticketgate ingest` does it (one mail per transaction), then the notifications
of all of them sent through the folder relay (`dir:`) as `ticketgate process` would: with a staff
triage address configured, so a new ticket sends the two notifications the issue names (the
acknowledgement and `staff_new_ticket`); the mails are still built outside the count.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAFF = """
[staff]
addresses = ["ana@smilepass.example"]
triage = "triage@smilepass.example"
"""


def fill(count: int, senders: int, workdir: Path, *, whole: bool = False, mix: str | None = None) -> None:
    """Generate `count` mails and put them in a fresh inbox in `workdir` (not counted: this runs in
    the parent, outside valgrind; building the mails alone was ~8 M instructions per mail).
    `whole`: the inbox stays empty and the mails are left as files for `whole_child` to store."""
    sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
    from bench_intake import write_config
    from bench_pipeline import ENVELOPE
    from intake_mails import DEFAULT_MIX, make_mails, parse_mix

    from gateway.config import load_settings
    from gateway.daemon.runtime import build_runtime

    mails = make_mails(count, 1, parse_mix(mix or DEFAULT_MIX), "instructions", senders)
    config = write_config(workdir, f"sqlite:///{workdir / 'ticketgate.db'}", port=2525, workers=1)
    if whole:  # the path: a new ticket's two notifications, the acknowledgement and staff's
        config.write_text(config.read_text(encoding="utf-8") + STAFF, encoding="utf-8")
    runtime = build_runtime(load_settings(config))
    try:
        if whole:
            (workdir / "mails").mkdir()
            for index, raw in enumerate(mails):
                (workdir / "mails" / f"{index:06d}.eml").write_bytes(raw)
        else:
            runtime.inbox.add_many([(raw, ENVELOPE) for raw in mails])
    finally:
        runtime.close()


def whole_child(workdir: Path) -> None:
    """Store and process each mail as `ticketgate ingest` does, then send every notification (the
    run valgrind counts for `--whole`)."""
    sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
    from bench_pipeline import ENVELOPE

    from gateway.config import load_settings
    from gateway.daemon.runtime import build_runtime

    runtime = build_runtime(load_settings(workdir / "ticketgate.toml"))
    outcomes: Counter[str] = Counter()
    try:
        processor = runtime.processor("bench")
        for path in sorted((workdir / "mails").iterdir()):
            # Stored already claimed, as `ingest` stores it (gateway/intake/pipe.py).
            items = runtime.inbox.add_claimed([(path.read_bytes(), ENVELOPE)], processor.worker)
            outcomes.update(result.outcome.value for result in processor.process_batch(items))
        sent = runtime.sender("bench").send_due(limit=100_000)
    finally:
        runtime.close()
    processed = sum(outcomes.values())
    print(f"stored and processed {processed} mails: {dict(outcomes)}; {len(sent)} notifications sent")


def child(workdir: Path) -> None:
    """Process every mail of the inbox `fill` made in `workdir` (the run valgrind counts)."""
    sys.path.insert(0, str(ROOT))
    import gateway.pipeline.processor as processor_module
    from gateway.config import load_settings
    from gateway.daemon.runtime import build_runtime

    processor_module.BATCH_SECONDS, processor_module.HANDOVER_SECONDS = 3600.0, 0.0
    runtime = build_runtime(load_settings(workdir / "ticketgate.toml"))
    try:
        processor = runtime.processor("bench")
        outcomes: Counter[str] = Counter()
        while results := processor.process_available():
            outcomes.update(result.outcome.value for result in results)
    finally:
        runtime.close()
    print(f"processed {sum(outcomes.values())} mails: {dict(outcomes)}")


def floor_child(workdir: Path) -> None:
    """The floor: each stored mail parsed by the email package alone, the way issue 24 defines it."""
    import email
    import sqlite3
    from email import policy

    with sqlite3.connect(workdir / "ticketgate.db") as db:
        raws = [raw for (raw,) in db.execute("SELECT raw FROM inbox ORDER BY id")]
    read = 0
    for raw in raws:
        message = email.message_from_bytes(raw, policy=policy.default)
        for name in ("From", "To", "Subject", "Date", "Message-ID"):
            read += len(str(message[name] or ""))
        body = message.get_body(preferencelist=("plain", "html"))
        read += len(body.get_content()) if body is not None else 0
        for attachment in message.iter_attachments():
            read += len(attachment.get_content())
    print(f"parsed {len(raws)} mails ({read} characters read)")


def instructions(
    count: int, senders: int, *, floor: bool = False, whole: bool = False, mix: str | None = None
) -> int:
    """What valgrind counted for one child run of `count` mails (`floor`: the email package alone;
    `whole`: storing, processing and sending, as `ingest` does)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="tg-instructions-") as scratch:
        workdir = Path(scratch)
        fill(count, senders, workdir, whole=whole, mix=mix)
        mode = "--floor-child" if floor else "--whole-child" if whole else "--child"
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
            sys.executable, __file__, mode, str(workdir),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts, hence the same count
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=30, help="mails in the first run (default 30)")
    parser.add_argument("--large", type=int, default=130, help="mails in the second run (default 130)")
    parser.add_argument("--senders", type=int, default=500, help="distinct customers (default 500)")
    parser.add_argument(
        "--mix", help="kinds of mail, weighted, as bench_pipeline.py (default plain=7,screenshot=1,replies=2)"
    )
    parser.add_argument("--floor", action="store_true", help="also count the email-package floor")
    parser.add_argument("--whole", action="store_true", help="count storing, processing and sending")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--whole-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child)
        return 0
    if args.floor_child is not None:
        floor_child(args.floor_child)
        return 0
    if args.whole_child is not None:
        whole_child(args.whole_child)
        return 0
    small = instructions(args.small, args.senders, whole=args.whole, mix=args.mix)
    large = instructions(args.large, args.senders, whole=args.whole, mix=args.mix)
    per_mail = (large - small) / (args.large - args.small)
    if args.whole:
        print(
            f"the whole path (stored and processed one by one, then sent), {args.senders} sender(s), "
            f"mix {args.mix or 'plain=7,screenshot=1,replies=2'}:"
        )
    else:
        print(f"processing alone, generated ~1 KB mails, {args.senders} sender(s), full batches:")
    print(f"  {args.small} mails: {small:,} instructions; {args.large} mails: {large:,}")
    print(f"  per mail: {per_mail / 1e6:.2f} million instructions")
    if args.floor:
        small_floor = instructions(args.small, args.senders, floor=True, mix=args.mix)
        large_floor = instructions(args.large, args.senders, floor=True, mix=args.mix)
        floor = (large_floor - small_floor) / (args.large - args.small)
        print("the floor: the email package parsing the same mails (policy.default; 7 headers, body, files):")
        print(f"  {args.small} mails: {small_floor:,} instructions; {args.large} mails: {large_floor:,}")
        print(f"  per mail: {floor / 1e6:.2f} million instructions")
        print(f"{'the whole path' if args.whole else 'processing'} is {per_mail / floor:.2f}x the floor")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
