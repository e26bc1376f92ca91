"""Instructions per processed mail, counted by valgrind: a figure this noisy machine repeats exactly.

Run from the project root: ``.venv/bin/python bench/instructions_per_mail.py [--small 30 --large 130]``.
Wall-clock and CPU-time figures on this machine differ by up to 30 % between runs minutes apart
(docs/performance/index.md), which hides a change of a few per cent. `valgrind --tool=callgrind`
counts the instructions a process executes, the same count for the same code and input whatever
else the machine does. This runs processing alone (bench_pipeline.py's generated mails, one
processor draining a fresh SQLite inbox, batches always full: the write-lock time bound is lifted,
as under valgrind every mail would otherwise be a batch of its own) twice, with `--small` and
`--large` mails, and prints the difference divided by the difference in mails: the cost of one
more mail, without the start-up (imports, the schema) both runs share. Takes ~5 minutes; needs
valgrind (Debian: `apt-get install valgrind`). No figure here is asserted anywhere.
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


def child(count: int, senders: int) -> None:
    """Generate `count` mails, put them in a fresh inbox, and process them all (run under valgrind)."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_intake import DEFAULT_MIX, make_mails, parse_mix, write_config
    from bench_pipeline import ENVELOPE

    import gateway.pipeline.processor as processor_module
    from gateway.config import load_settings
    from gateway.daemon.runtime import build_runtime

    processor_module.BATCH_SECONDS, processor_module.HANDOVER_SECONDS = 3600.0, 0.0
    mails = make_mails(count, 1, parse_mix(DEFAULT_MIX), "instructions", senders)
    workdir = Path(tempfile.mkdtemp(prefix="tg-instructions-"))
    try:
        config = write_config(workdir, f"sqlite:///{workdir / 'ticketgate.db'}", port=2525, workers=1)
        runtime = build_runtime(load_settings(config))
        try:
            runtime.inbox.add_many([(raw, ENVELOPE) for raw in mails])
            processor = runtime.processor("bench")
            outcomes: Counter[str] = Counter()
            while results := processor.process_available():
                outcomes.update(result.outcome.value for result in results)
        finally:
            runtime.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"processed {sum(outcomes.values())} mails: {dict(outcomes)}")


def instructions(count: int, senders: int) -> int:
    """What valgrind counted for one child run of `count` mails."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
            sys.executable, __file__, "--child", str(count), "--senders", str(senders),
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
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.senders)
        return 0
    small, large = instructions(args.small, args.senders), instructions(args.large, args.senders)
    per_mail = (large - small) / (args.large - args.small)
    print(f"processing alone, generated ~1 KB mails, {args.senders} sender(s), full batches:")
    print(f"  {args.small} mails: {small:,} instructions; {args.large} mails: {large:,}")
    print(f"  per mail: {per_mail / 1e6:.2f} million instructions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
