"""The long fault run (SPEC §15, §9): the fault suite's scenarios (tests/faults/scenarios.py) one after
another, again and again, with more mail, for a bounded time; it stops by itself.

Run from the project root, as root (the disk-full scenario mounts a tmpfs; without root it is
skipped and said so):

    .venv/bin/python bench/fault_run.py --minutes 15 --mails 60

Each pass runs every scenario (or those named with --only) on its own fresh database: a private
PostgreSQL (initdb + pg_ctl in a temp folder, on a port of its own; the postgres-restart scenario
restarts it, nobody else's) or SQLite on a small tmpfs. It prints, per run, mails accepted,
tickets, duplicates, lost, notifications delivered, duplicate deliveries (and how many the promise
allows there), and the seconds from the fault's end until nothing is pending or due; at the end, a
summary per scenario and every broken promise. Exit 1 if any promise was broken. Nothing here is
asserted by the test suite; tests/integration/test_fault_suite.py runs each scenario once, small.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it

from tests.faults.postgres import PrivatePostgres  # noqa: E402
from tests.faults.rig import Outcome  # noqa: E402
from tests.faults.scenarios import BY_NAME, SCENARIOS, run_scenario  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=15.0, help="start no new pass after this (default 15)"
    )
    parser.add_argument("--passes", type=int, default=0, help="stop after this many passes (0: time decides)")
    parser.add_argument("--mails", type=int, default=60, help="mails per scenario run (default 60)")
    parser.add_argument(
        "--only", action="append", choices=sorted(BY_NAME), help="only this scenario (repeatable)"
    )
    parser.add_argument(
        "--drain-limit", type=float, default=60.0, help="the promise, in seconds (default 60)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every outcome as JSON lines here")
    args = parser.parse_args(argv)
    # SIGTERM (`timeout`, kill PID) unwinds like Ctrl-C: nodes stopped, the private PostgreSQL removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scenarios = [BY_NAME[name] for name in args.only] if args.only else SCENARIOS

    load = os.getloadavg()
    print(
        f"fault run: {len(scenarios)} scenario(s), {args.mails} mails each, for {args.minutes:.0f} min;"
        f" load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {os.cpu_count()} cores",
        flush=True,
    )
    outcomes: list[Outcome] = []
    broken: list[str] = []
    stop_at = time.monotonic() + args.minutes * 60
    passes = 0
    with PrivatePostgres() as postgres, tempfile.TemporaryDirectory(prefix="tg-fault-run-") as temp:
        while time.monotonic() < stop_at and (not args.passes or passes < args.passes):
            passes += 1
            for scenario in scenarios:
                folder = Path(temp) / f"{passes}-{scenario.name}"
                folder.mkdir()
                try:
                    outcome = run_scenario(
                        scenario,
                        folder,
                        postgres=postgres,
                        mails=args.mails,
                        drain_limit=args.drain_limit * 3,
                    )
                except PermissionError as exc:
                    print(f"{scenario.name:<18} skipped: {exc}", flush=True)
                    continue
                except AssertionError as exc:  # the run itself could not go on (e.g. no mail accepted)
                    broken.append(f"pass {passes} {scenario.name}: {exc}")
                    print(f"{scenario.name:<18} FAILED TO RUN: {str(exc)[:2000]}", flush=True)
                    continue
                outcomes.append(outcome)
                problems = outcome.problems(args.drain_limit)
                broken += [f"pass {passes} {scenario.name}: {p}" for p in problems]
                print(f"pass {passes} {outcome.line()}" + ("  BROKEN" if problems else ""), flush=True)
                if args.json:
                    with open(args.json, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps({"pass": passes, **asdict(outcome)}) + "\n")
    summarize(outcomes, passes)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for problem in broken:
        print(f"BROKEN: {problem[:3000]}")
    return 1 if broken else 0


def summarize(outcomes: list[Outcome], passes: int) -> None:
    print(
        f"\n{passes} pass(es); per scenario: runs, mails accepted, tickets, dup, lost,"
        " notifications, dup deliveries, drain seconds (max)"
    )
    for name in dict.fromkeys(o.scenario for o in outcomes):
        runs = [o for o in outcomes if o.scenario == name]
        drains = [o.drained_after for o in runs if o.drained_after is not None]
        never = sum(1 for o in runs if o.drained_after is None)
        print(
            f"{name:<18} {len(runs):>3} runs  accepted {sum(o.accepted for o in runs):>5}"
            f"/{sum(o.mails for o in runs):<5} tickets {sum(o.tickets for o in runs):>5}"
            f" dup {sum(o.duplicates for o in runs)} lost {sum(o.lost for o in runs)}"
            f"  notifications {sum(o.notifications for o in runs):>5}"
            f"/{sum(o.expected_notifications for o in runs):<5}"
            f" dup deliveries {sum(o.duplicate_deliveries for o in runs)}"
            f"  drained max {max(drains, default=0):.1f}s" + (f" ({never} never)" if never else "")
        )


if __name__ == "__main__":
    sys.exit(main())
