"""The `serve` process the benches start and watch (bench_intake.py and the benches that build on
it): its config, starting and stopping it, and reading its processes' CPU time and memory from
/proc."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from intake_mails import RECIPIENT

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH_INTAKE = Path(__file__).resolve().parent / "bench_intake.py"  # runs the partial servers

# --- the serve process ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    workdir: Path, database_url: str, port: int, workers: int, processes: int | None = 1
) -> Path:
    """The bench's config; `processes` None leaves `processing.processes` to ticketgate's default (1 on
    SQLite, one per core on PostgreSQL)."""
    path = workdir / "ticketgate.toml"
    chosen = "" if processes is None else f"processes = {processes}\n"
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
{chosen}""",
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
            command = [sys.executable, str(BENCH_INTAKE), "--run-server", mode, str(config)]
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
