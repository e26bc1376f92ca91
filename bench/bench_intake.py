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
import io
import json
import os
import platform
import queue
import random
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it
sys.path.insert(0, str(Path(__file__).resolve().parent))
from thread_cpu import per_mail, task_cpu, thread_names  # noqa: E402  (beside this script)

SENDER = "maria@customer.example"
RECIPIENT = "support@smilepass.example"
KINDS = ("plain", "screenshot", "replies")
DEFAULT_MIX = "plain=7,screenshot=1,replies=2"
# Mails larger than this carry their bulk as an attached log file, as real large mails do,
# rather than as a megabyte of body text no person writes.
BODY_LIMIT = 8 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")

_SENTENCES = (
    "When I click ADD on the payment plan page nothing happens.",
    "I tried again in another browser and the same thing happened.",
    "The card was charged twice but the plan still shows as unpaid.",
    "Could you please look into this as soon as possible?",
    "My customer number is 4471-2290 and the plan was created yesterday.",
    "The app shows a spinner for a minute and then an error without a code.",
    "Our accountant needs the corrected invoice before the end of the month.",
    "I reset my password but the login page keeps sending me back to the start.",
)


# --- the mails ---------------------------------------------------------------------------------


def screenshot_png(width: int = 240, height: int = 160) -> bytes:
    """A small screenshot-like PNG (flat UI blocks and a little text), made with Pillow."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (246, 247, 249))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 24), fill=(40, 90, 170))
    draw.text((8, 6), "SmilePass - Payment plans", fill=(255, 255, 255))
    for row in range(4):
        top = 36 + row * 28
        draw.rectangle((8, top, width - 8, top + 20), outline=(200, 200, 205), fill=(255, 255, 255))
        draw.text((14, top + 5), f"Plan {row + 1}   EUR {(row + 1) * 19}.00", fill=(30, 30, 30))
    draw.rectangle((width - 60, height - 22, width - 8, height - 6), fill=(60, 160, 90))
    draw.text((width - 50, height - 19), "ADD", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _filler(size: int, rng: random.Random) -> str:
    """About `size` bytes of support-mail prose, in lines of normal length."""
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(_SENTENCES) for _ in range(rng.randint(1, 2)))
        lines.append(line)
        total += len(line) + 2
    return "\n".join(lines)


def _log_lines(size: int, rng: random.Random) -> str:
    lines: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        line = (
            f"2026-11-25T10:{n // 60 % 60:02d}:{n % 60:02d}Z INFO plan-service"
            f" request={rng.getrandbits(48):012x} path=/api/plans/{rng.randint(1, 9999)}"
            f" status={rng.choice((200, 200, 200, 500))}"
        )
        lines.append(line)
        total += len(line) + 2
    return "\n".join(lines)


def sender_of(index: int, senders: int) -> str:
    """The customer who wrote mail number `index`: one of `senders` (mail after an outage comes
    from many people, and each new one is sent an acknowledgement)."""
    return SENDER if senders <= 1 else f"customer{index % senders}@customer.example"


def make_mail(kind: str, index: int, run_id: str, size: int, png: bytes, senders: int = 1) -> bytes:
    """Mail number `index` of kind plain, screenshot or replies, about `size` bytes on the wire."""
    rng = random.Random(index)
    message_id = f"<bench-{run_id}-{index}@customer.example>"
    subjects = (
        "Payment plan ADD button does nothing",
        "[urgent] Charged twice for my plan",
        "[billing] Invoice for November is wrong",
        "Cannot log in after password reset",
        "[High][Bug] App crashes when opening plans",
    )
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = f"Maria Lopez <{sender_of(index, senders)}>"
    msg["To"] = RECIPIENT
    msg["Date"] = format_datetime(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id
    subject = f"{subjects[index % len(subjects)]} (case {index})"
    intro = "Hello support,\n\n"
    outro = "\n\nThanks,\nMaria\n-- \nMaria Lopez\nSent from my iPhone\n"
    if kind == "replies" and index > 0:
        earlier = max(0, index - 1 - rng.randint(0, 20))
        del msg["From"]  # the reply comes from whoever wrote the mail it answers
        msg["From"] = f"Maria Lopez <{sender_of(earlier, senders)}>"
        msg["Subject"] = f"Re: [TG-{earlier + 1}] {subjects[earlier % len(subjects)]} (case {earlier})"
        msg["In-Reply-To"] = f"<bench-{run_id}-{earlier}@customer.example>"
        msg["References"] = f"<bench-{run_id}-{earlier}@customer.example>"
        quoted = "\n".join(f"> {line}" for line in _filler(400, rng).splitlines())
        intro = "It still happens, see below.\n\n"
        outro = (
            "\n\nMaria\n\nOn Tue, 24 Nov 2026 at 09:12, SmilePass Support"
            " <support@smilepass.example> wrote:\n" + quoted + "\n"
        )
    else:
        msg["Subject"] = subject
    bare = len(msg.as_bytes()) + len(intro) + len(outro) + 64
    body_room = max(
        0, min(size, BODY_LIMIT) - bare - (len(png) * 4 // 3 + 300 if kind == "screenshot" else 0)
    )
    msg.set_content(intro + _filler(max(body_room, 80), rng) + outro)
    if kind == "screenshot":
        msg.add_attachment(png, maintype="image", subtype="png", filename=f"screenshot-{index}.png")
    missing = size - len(msg.as_bytes())
    if missing > 512:  # large mails: the bulk is an attached log, base64 adds a third
        log = _log_lines(missing * 3 // 4 - 200, rng).encode()
        msg.add_attachment(log, maintype="application", subtype="octet-stream", filename="app.log")
    return msg.as_bytes()


def parse_mix(text: str) -> list[tuple[str, int]]:
    """`plain=7,screenshot=1,replies=2` (or `plain`) -> [(kind, weight)]."""
    mix: list[tuple[str, int]] = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in KINDS:
            raise argparse.ArgumentTypeError(f"unknown mail kind {name!r}; one of {', '.join(KINDS)}")
        mix.append((name, int(weight or 1)))
    return mix


def make_mails(
    count: int, size: int, mix: Sequence[tuple[str, int]], run_id: str, senders: int = 1
) -> list[bytes]:
    """`count` distinct mails in the proportions of `mix`, interleaved the way they would arrive."""
    png = screenshot_png()
    cycle = [kind for kind, weight in mix for _ in range(weight)]
    order = random.Random(0)
    kinds = [cycle[i % len(cycle)] for i in range(count)]
    order.shuffle(kinds)
    return [make_mail(kind, i, run_id, size, png, senders) for i, kind in enumerate(kinds)]


# --- the serve process ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(workdir: Path, database_url: str, port: int, workers: int, processes: int = 1) -> Path:
    path = workdir / "ticketgate.toml"
    path.write_text(
        f"""
[gateway]
addresses = ["{RECIPIENT}"]
secret = "bench-secret-0123456789abcdef"

[database]
url = "{database_url}"

[smtp]
listen = "127.0.0.1:{port}"
max_connections = 1000
max_connections_per_ip = 1000

[outbound]
relay = "dir:{workdir / "outgoing"}"

[storage]
blob_dir = "{workdir / "blobs"}"

[limits]
# The bench's senders each write more than the flood limit's 30 new tickets an hour; measured is
# the making of tickets, so the limit is off here.
new_tickets_per_sender_per_hour = 0

[processing]
workers = {workers}
processes = {processes}
""",
        encoding="utf-8",
    )
    return path


def start_serve(
    config: Path,
    log_path: Path,
    port: int,
    mode: str = "serve",
    timeout: float = 60.0,
    tree: Path = ROOT,
) -> subprocess.Popen[bytes]:
    """Start `serve` (or an intake-only server, see `--server`) and return once it answers SMTP
    greetings. `tree`: the checkout whose `gateway` package serve runs (`--tree`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TICKETGATE_CONFIG", "TICKETGATE_DATABASE_URL")}
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config)]
        if mode != "serve":
            command = [sys.executable, str(Path(__file__).resolve()), "--run-server", mode, str(config)]
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
            env=env,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as probe:
                probe.noop()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"serve did not accept connections within {timeout:.0f}s")


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_profiler(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the serve process (all threads, idle ones left out) until the run ends."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = "raw" if out.endswith(".txt") else "speedscope" if out.endswith(".json") else "flamegraph"
    command = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "200", "--format", fmt]
    return subprocess.Popen([*command, "--output", out])


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it: serve's worker processes count as serve."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int, *, alone: bool = False) -> float:
    """User + system CPU time of process `pid` and the processes below it (`alone`: of `pid`
    only), all their threads."""
    total = 0.0
    for member in [pid] if alone else process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: fields 14 and 15
    return total


def wait_until_started(pid: int, give_up: float = 30.0) -> None:
    """Wait until serve and its worker processes have finished starting (their CPU use settles),
    so the imports of a worker process still starting are not counted as the cost of mail."""
    deadline = time.monotonic() + give_up
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - before < 0.02:
            return
        before = now


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idling since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / CLK_TCK


def wait_until_idle(max_busy: float, give_up: float = 120.0) -> float:
    """Wait (up to `give_up` s) until the machine was busier than `max_busy` cores for 3 s at most;
    returns the busy cores last seen. Other people's work would otherwise be in our figures."""
    deadline = time.monotonic() + give_up
    while True:
        before = machine_busy_seconds()
        time.sleep(3)
        busy = (machine_busy_seconds() - before) / 3
        if busy <= max_busy or time.monotonic() > deadline:
            return busy


def status_kb(pid: int, key: str) -> int:
    """A /proc/PID/status figure (VmRSS, VmHWM) summed over `pid` and the processes below it."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith(key + ":")), 0)
    return total


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
        f"{r['processes']} worker process(es) x {r['workers']} thread(s)"
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
        default=1,
        help="processing.processes of serve (default 1; 0: processing on threads of serve itself)",
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
