"""End-to-end intake benchmark: `ticketgate serve` on a fresh database, N mails over C SMTP connections.

Run from the project root: ``.venv/bin/python bench/bench_intake.py --mails 2000 --connections 8``.
It writes a temporary config, starts ``python -m gateway.cli.main serve`` on a free port, sends the mails
from C client threads (smtplib; a new connection per mail unless ``--reuse``), then polls the inbox
table (read-only) until every accepted mail is processed. It prints accepted mails/s, mails/s until
every ticket is committed, accept latency, CPU time per mail and memory of the serve process.
No figure here is asserted anywhere: this is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import signal
import smtplib
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it
sys.path.insert(0, str(Path(__file__).resolve().parent))
from intake_mails import (  # noqa: E402  (beside this script)
    DEFAULT_MIX,
    RECIPIENT,
    SENDER,
    make_mails,
    parse_mix,
)
from serve_process import (  # noqa: E402  (beside this script)
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    process_tree,
    start_profiler,
    start_serve,
    status_kb,
    stop_serve,
    wait_until_idle,
    wait_until_started,
    write_config,
)
from thread_cpu import per_mail, task_cpu, thread_names  # noqa: E402  (beside this script)


def run_partial_server(mode: str, config: Path) -> int:
    """`--server intake`: ticketgate's SMTP intake and group commit without processing workers;
    `--server bare`: aiosmtpd answering 250 and storing nothing. What each part costs on its own."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    from gateway.addresses import GatewayAddresses
    from gateway.config import load_settings
    from gateway.daemon.runtime import build_runtime
    from gateway.intake.smtp import start_smtp
    from gateway.intake.writer import InboxWriter

    settings = load_settings(config)

    class Bare:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 2.0.0 Ok"

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        if mode == "bare":
            server = await loop.create_server(
                lambda: SMTP(Bare(), hostname="bench", ident="bench"), settings.smtp.host, settings.smtp.port
            )
            await stop.wait()
            server.close()
            return
        runtime = build_runtime(settings)
        async with InboxWriter(runtime.inbox) as writer:
            smtp = await start_smtp(
                settings.smtp, GatewayAddresses(settings.gateway.addresses), writer, hostname="bench"
            )
            await stop.wait()
            await smtp.stop()
        runtime.close()

    asyncio.run(serve())
    return 0


# --- the database side (read-only) ----------------------------------------------------------


class InboxCounter:
    """Counts inbox rows by state with read-only queries, beside the daemon's own writes."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            path = Path(url.database or "").resolve()
            self._engine = create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, timeout=30, check_same_thread=False
                ),
            )
        else:
            self._engine = create_engine(database_url, execution_options={"postgresql_readonly": True})

    def states(self) -> Counter[str]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            rows = conn.execute(text("SELECT state, count(*) FROM inbox GROUP BY state")).all()
        return Counter({str(state): int(n) for state, n in rows})

    def outcomes(self) -> Counter[str]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            rows = conn.execute(text("SELECT outcome, count(*) FROM inbox GROUP BY outcome")).all()
            tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
        found = Counter({str(outcome): int(n) for outcome, n in rows})
        found["tickets in table"] = int(tickets)
        return found

    def unsent(self) -> int:
        """Notifications queued and not yet sent (nor given up on)."""
        from sqlalchemy import text

        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM outbox WHERE status IN ('queued', 'retry')")
                ).scalar_one()
            )

    def close(self) -> None:
        self._engine.dispose()


# --- the clients ------------------------------------------------------------------------------


@dataclass
class ClientResults:
    latencies: list[float] = field(default_factory=list)  # MAIL FROM .. 250 after DATA, seconds
    sessions: list[float] = field(default_factory=list)  # connect .. QUIT answered (new connection)
    failures: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


_FROM = re.compile(rb"^From: [^<\r\n]*<([^>]+)>", re.MULTILINE)


def _client(
    port: int, work: queue.SimpleQueue[tuple[str, bytes] | None], reuse: bool, results: ClientResults
) -> None:
    conn: smtplib.SMTP | None = None
    latencies: list[float] = []
    sessions: list[float] = []
    failures: Counter[str] = Counter()
    while (item := work.get()) is not None:
        mail_from, raw = item
        start = time.perf_counter()
        try:
            if conn is None:
                conn = smtplib.SMTP("127.0.0.1", port, timeout=120)
                conn.ehlo("bench.example")
            sent = time.perf_counter()
            conn.sendmail(mail_from, [RECIPIENT], raw)
            latencies.append(time.perf_counter() - sent)
            if not reuse:
                conn.quit()
                conn = None
                sessions.append(time.perf_counter() - start)
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", None)
            failures[f"{type(exc).__name__} {code or ''}".strip()] += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.quit()
    with results.lock:
        results.latencies += latencies
        results.sessions += sessions
        results.failures += failures


def send_all(port: int, mails: Sequence[bytes], connections: int, reuse: bool) -> ClientResults:
    work: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
    for raw in mails:  # the envelope sender is the From address, as when customers send directly
        found = _FROM.search(raw)
        work.put((found.group(1).decode() if found else SENDER, raw))
    for _ in range(connections):
        work.put(None)
    results = ClientResults()
    threads = [
        threading.Thread(target=_client, args=(port, work, reuse, results), name=f"client-{n}")
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- sampling and the report -----------------------------------------------------------------


@dataclass
class Sample:
    at: float
    rss_kb: int
    done: int


def _percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} x {model}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"


def rss_at_progress(samples: Sequence[Sample], total: int, points: Sequence[int]) -> list[int]:
    """RSS (KB) at the first sample where at least p % of the mails were processed."""
    found: list[int] = []
    for p in points:
        goal = total * p / 100
        match = next((s for s in samples if s.done >= goal), samples[-1] if samples else None)
        found.append(match.rss_kb if match else 0)
    return found


def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'ticketgate.db'}"
    port = free_port()
    config = write_config(workdir, database_url, port, args.workers, args.processes)
    run_id = f"{int(time.time())}-{os.getpid()}"
    mails = make_mails(args.mails, args.size_kb * 1024, parse_mix(args.mix), run_id, args.senders)
    load_before = os.getloadavg()[0]  # others' work on the machine skews every figure: say so
    tree = Path(getattr(args, "tree", None) or ROOT).resolve()
    proc = start_serve(config, workdir / "serve.log", port, args.server, tree=tree)
    wait_until_started(proc.pid)
    profiler = start_profiler(proc.pid, args.profile) if args.profile else None
    counter = InboxCounter(database_url)
    try:
        before = counter.states() if args.server != "bare" else Counter()
        baseline_done = before["done"] + before["quarantined"]
        samples: list[Sample] = []
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.is_set():
                states = counter.states() if args.server == "serve" else Counter()
                done = states["done"] + states["quarantined"] - baseline_done
                samples.append(Sample(time.perf_counter(), status_kb(proc.pid, "VmRSS"), done))
                stop_sampling.wait(args.poll)

        if args.wait_idle is not None:
            wait_until_idle(args.wait_idle)
        cpu_before = cpu_seconds(proc.pid)
        threads_before = task_cpu(process_tree(proc.pid)) if getattr(args, "threads", False) else {}
        serve_cpu_before = cpu_seconds(proc.pid, alone=True)
        client_before = os.times()
        machine_before = machine_busy_seconds()
        started = time.perf_counter()
        sampler = threading.Thread(target=sample, name="sampler", daemon=True)
        sampler.start()
        results = send_all(port, mails, args.connections, args.reuse)
        accepted_at = time.perf_counter()
        client_after = os.times()
        accepted = len(results.latencies)
        deadline = accepted_at + args.timeout
        while args.server == "serve":
            states = counter.states()
            processed = states["done"] + states["quarantined"] - baseline_done
            if processed >= accepted:
                break
            if time.perf_counter() > deadline or proc.poll() is not None:
                raise SystemExit(
                    f"only {processed} of {accepted} mails processed; see {workdir / 'serve.log'}"
                )
            time.sleep(min(args.poll, 0.05))
        committed_at = time.perf_counter()
        processed = accepted if args.server != "serve" else processed
        # `--until-sent`: the end is when every notification those mails queued has gone out too.
        while args.server == "serve" and getattr(args, "until_sent", False):
            if counter.unsent() == 0:
                break
            if time.perf_counter() > deadline or proc.poll() is not None:
                raise SystemExit(f"notifications still unsent; see {workdir / 'serve.log'}")
            time.sleep(min(args.poll, 0.05))
        sent_at = time.perf_counter()
        stop_sampling.set()
        sampler.join()
        cpu = cpu_seconds(proc.pid) - cpu_before
        serve_cpu = cpu_seconds(proc.pid, alone=True) - serve_cpu_before
        threads: list[tuple[str, float]] = []
        if getattr(args, "threads", False):
            members = process_tree(proc.pid)
            threads = per_mail(
                threads_before,
                task_cpu(members),
                thread_names(members),
                serve_pid=proc.pid,
                mails=max(1, len(results.latencies)),
            )
        machine_busy = machine_busy_seconds() - machine_before
        finished_at = time.perf_counter()
        peak_kb = status_kb(proc.pid, "VmHWM")
        final_rss_kb = status_kb(proc.pid, "VmRSS")
        samples.append(Sample(committed_at, final_rss_kb, processed))
        outcomes = counter.outcomes() if args.server == "serve" else Counter()
    finally:
        counter.close()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            profiler.wait(timeout=120)
        stop_serve(proc)
    client_cpu = client_after.user + client_after.system - client_before.user - client_before.system
    others = max(0.0, machine_busy - cpu - client_cpu) / (finished_at - started)
    points = (10, 25, 50, 75, 100)
    rss_points = rss_at_progress(samples, accepted, points)
    report: dict[str, object] = {
        "machine": machine(),
        "load_before": load_before,
        "database": database_url.partition(":")[0],
        "mails": args.mails,
        "connections": args.connections,
        "reuse": args.reuse,
        "size_kb": args.size_kb,
        "mean_bytes": sum(map(len, mails)) // max(1, len(mails)),
        "mix": args.mix,
        "senders": args.senders,
        "workers": args.workers,
        "processes": args.processes,
        "server": args.server,
        "tree": str(tree),
        "accepted": accepted,
        "failures": dict(results.failures),
        "accept_seconds": accepted_at - started,
        "accept_rate": accepted / (accepted_at - started),
        "commit_seconds": committed_at - started,
        "end_to_end_rate": accepted / (committed_at - started),
        "until_sent": bool(getattr(args, "until_sent", False)),
        "sent_seconds": sent_at - started,
        "sent_rate": accepted / (sent_at - started),
        "latency_p50_ms": _percentile(results.latencies, 50) * 1000,
        "latency_p99_ms": _percentile(results.latencies, 99) * 1000,
        "latency_max_ms": max(results.latencies, default=float("nan")) * 1000,
        "session_p50_ms": _percentile(results.sessions, 50) * 1000,
        "session_p99_ms": _percentile(results.sessions, 99) * 1000,
        "cpu_ms_per_mail": cpu * 1000 / max(1, accepted),
        "serve_cpu_ms_per_mail": serve_cpu * 1000 / max(1, accepted),
        "client_cpu_ms_per_mail": client_cpu * 1000 / max(1, accepted),
        "other_processes_cores": others,
        "peak_rss_mb": peak_kb / 1024,
        "thread_cpu_ms_per_mail": dict(threads),
        "rss_mb_at_percent": {p: kb / 1024 for p, kb in zip(points, rss_points, strict=True)},
        "outcomes": dict(outcomes),
    }
    if args.keep:
        report["workdir"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def print_report(r: dict[str, object]) -> None:
    rss = r["rss_mb_at_percent"]
    assert isinstance(rss, dict)
    print("ticketgate intake benchmark")
    print(f"machine:          {r['machine']} (load average {r['load_before']:.2f} before the run)")
    print(
        f"setup:            {r['database']}, {r['mails']} mails of ~{r['size_kb']} KB "
        f"(mean {r['mean_bytes']} bytes, mix {r['mix']}, {r['senders']} sender(s)), "
        f"{r['connections']} connections"
        f"{' (kept open)' if r['reuse'] else ' (a new one per mail)'}, "
        f"{r['processes'] if r['processes'] is not None else 'the default'} worker process(es) "
        f"x {r['workers']} thread(s)"
    )
    print(f"accepted:         {r['accepted']} of {r['mails']} (failures: {r['failures'] or 'none'})")
    print(f"accepted rate:    {r['accept_rate']:.0f} mails/s ({r['accept_seconds']:.2f} s)")
    if r["server"] == "serve":
        print(
            f"end-to-end rate:  {r['end_to_end_rate']:.0f} mails/s "
            f"(every mail processed after {r['commit_seconds']:.2f} s)"
        )
        if r.get("until_sent"):
            print(
                f"sent rate:        {r['sent_rate']:.0f} mails/s "
                f"(every notification sent after {r['sent_seconds']:.2f} s)"
            )
    else:
        print(f"end-to-end rate:  n/a (--server {r['server']}: nothing is processed)")
    print(
        f"accept latency:   p50 {r['latency_p50_ms']:.1f} ms, p99 {r['latency_p99_ms']:.1f} ms, "
        f"max {r['latency_max_ms']:.1f} ms (MAIL FROM to 250)"
    )
    if not r["reuse"]:
        print(
            f"session time:     p50 {r['session_p50_ms']:.1f} ms, "
            f"p99 {r['session_p99_ms']:.1f} ms (connect to QUIT)"
        )
    print(
        f"cpu per mail:     {r['cpu_ms_per_mail']:.2f} ms serve ({r['serve_cpu_ms_per_mail']:.2f} in its own "
        f"process, the rest in its workers), {r['client_cpu_ms_per_mail']:.2f} ms client "
        f"(other processes used {r['other_processes_cores']:.2f} cores meanwhile)"
    )
    print(
        f"peak memory:      {r['peak_rss_mb']:.1f} MB (VmHWM, serve and its worker processes); "
        "RSS at 10/25/50/75/100 % processed: " + " / ".join(f"{mb:.1f}" for mb in rss.values()) + " MB"
    )
    threads = r.get("thread_cpu_ms_per_mail") or {}
    assert isinstance(threads, dict)
    for name, ms in threads.items():
        print(f"  cpu per mail:   {ms:6.2f} ms  {name}")
    print(f"outcomes:         {r['outcomes']}")
    if "workdir" in r:
        print(f"kept:             {r['workdir']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mails", "-n", type=int, default=2000, help="mails to send (default 2000)")
    parser.add_argument(
        "--connections", "-c", type=int, default=8, help="concurrent SMTP clients (default 8)"
    )
    parser.add_argument(
        "--size-kb", type=int, default=1, help="approximate size of each mail in KB (default 1)"
    )
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"kinds and weights (default {DEFAULT_MIX})")
    parser.add_argument("--reuse", action="store_true", help="keep each client's connection open")
    parser.add_argument(
        "--senders",
        type=int,
        default=500,
        help="distinct customers the mails come from (default 500; 1: all from one, so at most "
        "ack_limit_per_hour acknowledgements are queued)",
    )
    parser.add_argument("--database-url", help="an empty database (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=1, help="processing.workers of serve (default 1)")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="processing.processes of serve (default: ticketgate's, 1 on SQLite and one per core on "
        "PostgreSQL; 0: processing on threads of serve itself)",
    )
    parser.add_argument(
        "--server",
        choices=("serve", "intake", "bare"),
        default="serve",
        help="serve: the real daemon (default); intake: SMTP + group commit, no processing; "
        "bare: aiosmtpd storing nothing",
    )
    parser.add_argument("--run-server", nargs=2, metavar=("MODE", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between database/memory samples")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="give up waiting for processing after this"
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        metavar="CORES",
        help="before sending, wait (up to 2 min) until the machine uses at most CORES (e.g. 0.3)",
    )
    parser.add_argument(
        "--until-sent",
        action="store_true",
        help="also wait until every notification the mails queued is sent (the 'sent' rate)",
    )
    parser.add_argument(
        "--threads",
        action="store_true",
        help="also print the CPU per mail of each thread of serve and its workers (bench/thread_cpu.py)",
    )
    parser.add_argument(
        "--tree", metavar="PATH", help="run the `gateway` package of this checkout (default: this one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (config, db, log)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="record the serve process with py-spy (.txt raw stacks, .svg, .json)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.run_server:
        return run_partial_server(args.run_server[0], Path(args.run_server[1]))
    parse_mix(args.mix)
    # A stopped benchmark must stop its daemon too: SIGTERM unwinds through run()'s `finally`.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    report = run(args)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
