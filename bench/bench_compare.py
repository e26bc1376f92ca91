"""Side by side in one run: bare aiosmtpd, `serve` on SQLite and `serve` on PostgreSQL.

Run from the project root::

    .venv/bin/python bench/bench_compare.py --rounds 3 --mails 2000

Each round runs `bench/bench_intake.py`'s measurement once per server, one after the other, with
the same generated load: `bare` (aiosmtpd answering 250 and storing nothing: what the SMTP layer and
the client cost on this machine at that moment), `sqlite` (the real daemon on a fresh SQLite file)
and `postgres` (the real daemon on a fresh database made for the run on `--postgres`'s server and
dropped after it). The order turns from round to round, so a change in the machine's load weighs on
each alike. Every figure is then given as a ratio to the bare server *of the same round*: on this
shared two-core machine the absolute figures move by 2-3 times between days, the ratios far less.

It asserts nothing; `tests/integration/test_bench_smoke.py` only checks that it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_intake import machine, run
from intake_mails import DEFAULT_MIX

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SERVERS = ("bare", "sqlite", "postgres")


def fresh_postgres(base_url: str) -> tuple[str, str]:
    """A new empty database on `base_url`'s server: (its URL, its name). The tests make theirs so."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"tg_bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False), name


def drop_postgres(base_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def measure(server: str, args: argparse.Namespace) -> dict[str, object]:
    """One `bench_intake` run of `server` with this comparison's load (`NAME-before`: the daemon of
    the `--before` checkout)."""
    server, _, before = server.partition("-")
    options = argparse.Namespace(
        tree=args.before if before else None,
        mails=args.mails,
        connections=args.connections,
        size_kb=args.size_kb,
        mix=args.mix,
        reuse=args.reuse,
        senders=args.senders,
        database_url=None,
        workers=args.workers,
        processes=args.processes,
        server="bare" if server == "bare" else "serve",
        poll=0.25,
        timeout=args.timeout,
        wait_idle=None,
        keep=False,
        profile=None,
        until_sent=True,
    )
    if server != "postgres":
        return run(options)
    options.database_url, name = fresh_postgres(args.postgres)
    try:
        return run(options)
    finally:
        drop_postgres(args.postgres, name)


ROWS: tuple[tuple[str, str, str], ...] = (
    # (label, report key, format)
    ("accepted mails/s", "accept_rate", "{:.0f}"),
    ("end to end mails/s (every mail processed)", "end_to_end_rate", "{:.0f}"),
    ("all sent mails/s (every notification sent too)", "sent_rate", "{:.0f}"),
    ("accept p50 ms", "latency_p50_ms", "{:.1f}"),
    ("accept p99 ms", "latency_p99_ms", "{:.1f}"),
    ("CPU per mail ms (server and its workers)", "cpu_ms_per_mail", "{:.2f}"),
    ("of which in the serve process", "serve_cpu_ms_per_mail", "{:.2f}"),
    ("client CPU per mail ms", "client_cpu_ms_per_mail", "{:.2f}"),
    ("peak memory MB (VmHWM)", "peak_rss_mb", "{:.0f}"),
    ("others' load, cores", "other_processes_cores", "{:.2f}"),
)


def _cell(values: Sequence[float], fmt: str) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)}–{fmt.format(high)}"


def table(rounds: Sequence[dict[str, dict[str, object]]], servers: Sequence[str]) -> str:
    """A Markdown table: each figure's range over the rounds, and each server's end-to-end rate as
    a ratio to the bare server's accepted rate of the same round."""
    lines = ["| | " + " | ".join(servers) + " |", "| --- |" + " --- |" * len(servers)]
    for label, key, fmt in ROWS:
        cells = []
        for server in servers:
            values = [float(r[server][key]) for r in rounds if server in r]  # type: ignore[arg-type]
            if server == "bare" and key in ("end_to_end_rate", "sent_rate", "serve_cpu_ms_per_mail"):
                values = []
            cells.append(_cell(values, fmt))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if "bare" in servers:
        for label, key in (
            ("end to end ÷ bare (same round)", "end_to_end_rate"),
            ("all sent ÷ bare", "sent_rate"),
        ):
            cells = []
            for server in servers:
                ratios = [
                    float(r[server][key]) / float(r["bare"]["accept_rate"])  # type: ignore[arg-type]
                    for r in rounds
                    if server in r and server != "bare"
                ]
                cells.append(_cell(ratios, "{:.3f}"))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for suffix in ("", "-before"):
        if f"sqlite{suffix}" in servers and f"postgres{suffix}" in servers:
            ratios = [
                float(r[f"sqlite{suffix}"]["end_to_end_rate"])
                / float(r[f"postgres{suffix}"]["end_to_end_rate"])  # type: ignore[arg-type]
                for r in rounds
            ]
            lines.append(
                f"| SQLite ÷ PostgreSQL{suffix}, end to end (same round) | "
                + " | ".join(_cell(ratios, "{:.2f}") if s == f"postgres{suffix}" else "" for s in servers)
                + " |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every server (default 3)")
    parser.add_argument("--mails", "-n", type=int, default=2000, help="mails per run (default 2000)")
    parser.add_argument("--connections", "-c", type=int, default=8, help="SMTP clients (default 8)")
    parser.add_argument("--size-kb", type=int, default=1)
    parser.add_argument("--mix", default=DEFAULT_MIX)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--reuse", action="store_true", help="keep each client's connection open")
    parser.add_argument("--workers", type=int, default=1, help="processing.workers (default 1)")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="processing.processes (default: ticketgate's, 1 on SQLite and one per core on PostgreSQL)",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"which of {', '.join(SERVERS)} to run, comma-separated (default all)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TICKETGATE_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL server URL to make (and drop) a fresh database on for each run",
    )
    parser.add_argument(
        "--before",
        metavar="PATH",
        help="also run `sqlite-before` and `postgres-before`: the daemon of this checkout "
        "(e.g. `git archive COMMIT gateway | tar -x -C PATH`), in the same rounds",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", action="store_true", help="print every run's report as JSON lines too")
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.before:
        servers += [f"{s}-before" for s in servers if s != "bare"]
    unknown = {s.partition("-")[0] for s in servers} - set(SERVERS)
    if unknown:
        parser.error(f"unknown server(s): {', '.join(sorted(unknown))}")
    rounds: list[dict[str, dict[str, object]]] = []
    loads: list[tuple[float, float, float]] = [os.getloadavg()]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for number in range(args.rounds):
        order = servers[number % len(servers) :] + servers[: number % len(servers)]
        reports: dict[str, dict[str, object]] = {}
        for server in order:
            reports[server] = measure(server, args)
            if args.json:
                print(json.dumps({**reports[server], "round": number + 1, "compared": server}), flush=True)
            print(
                f"round {number + 1} {server}: accepted {reports[server]['accept_rate']:.0f}/s, "
                + (f"end to end {reports[server]['end_to_end_rate']:.0f}/s, " if server != "bare" else "")
                + f"p99 {reports[server]['latency_p99_ms']:.1f} ms, "
                f"{reports[server]['cpu_ms_per_mail']:.2f} ms CPU/mail, "
                f"others {reports[server]['other_processes_cores']:.2f} cores",
                file=sys.stderr,
                flush=True,
            )
        rounds.append(reports)
        loads.append(os.getloadavg())
    print(f"machine: {machine()}; started {started}")
    print(
        "load average (1/5/15 min) before and after each round: "
        + "; ".join(" / ".join(f"{v:.2f}" for v in load) for load in loads)
    )
    print(
        f"load: {args.mails} mails of ~{args.size_kb} KB (mix {args.mix}, {args.senders} senders), "
        f"{args.connections} connections{' kept open' if args.reuse else ', a new one per mail'}, "
        f"{args.processes if args.processes is not None else 'the default'} worker process(es) "
        f"x {args.workers} thread(s); {args.rounds} round(s)"
    )
    print()
    print(table(rounds, servers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
