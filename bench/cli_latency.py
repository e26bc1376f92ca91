"""How long the `ticketgate` read commands take, as ratios to `python -c pass` measured in the same
run (a machine shared with others is slower or faster by the minute; the ratio is what holds).

Run from the project root: ``.venv/bin/python bench/cli_latency.py [--tickets 1000] [--rounds 10]``.
It makes a SQLite database with ``--tickets`` tickets through ``ticketgate ingest`` (the real
pipeline), starts a real ``serve`` on it (its config names no ``[control]``: the control socket is
on by default), then runs each command ``--rounds`` times, the commands taking turns in a shuffled
order each round, hyperfine-style, and prints each one's median wall time and its ratio to
``python -c pass``. Each read command runs twice in every round: "serve's socket", with the
serve's own config (the running serve answers it over its default control socket), and "alone",
with a second config file on the same database that no serve runs (its default socket file does
not exist, so the command finds nobody and runs in its own process, as every command does when
the daemon is not running). ``tickets list`` also runs with a stale socket file at its config's
default path (a serve that was killed) and with ``control.socket = ""`` (off: no look for a
daemon at all), which show what the look costs when nobody answers. With ``--before PATH`` (a
tree, e.g. ``git archive main gateway templates | tar -x -C /tmp/before``) each read command also
runs from that tree, in the same rounds, on the serve's config.

With ``--prototypes`` it also measures the two prototypes of a read path the design was chosen
between (the docs page says which and why): ``socket``, a stand-in server that runs the real
`main` on the request's arguments, with a client of a few lines, and ``sqlite3``, a read that
imports no SQLAlchemy (the config read with ticketgate's own loader, the queue query in plain SQL
through the standard library's sqlite3). Finally ``-X importtime`` says where `tickets list`'s
import time goes when it runs alone. No figure here is asserted anywhere: this is a measuring
tool, not a test.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPIENT = "support@smilepass.example"

SERVER = r"""
import contextlib, io, json, os, socket, sys
from gateway.cli.main import main
import gateway.cli.queue, gateway.cli.tickets, gateway.cli.ops, gateway.cli.inbox  # what a daemon has
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
print("ready", flush=True)
while True:
    connection, _ = server.accept()
    with connection:
        data = b""
        while not data.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(json.loads(data))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        connection.sendall(json.dumps([code, out.getvalue(), err.getvalue()]).encode())
"""

CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps(sys.argv[2:]).encode() + b"\n")
s.shutdown(socket.SHUT_WR)
data = b""
while chunk := s.recv(1 << 20):
    data += chunk
code, out, err = json.loads(data)
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(code)
"""

PLAIN_SQLITE = r"""
import sqlite3, sys
from gateway.config import load_settings
settings = load_settings(sys.argv[1])
path = settings.database.url.removeprefix("sqlite:///")
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
rows = db.execute(
    "SELECT id, priority, status, tier, title, created_at FROM tickets ORDER BY id"
).fetchall()
prefix = settings.gateway.ticket_prefix
print("\n".join(f"{prefix}-{r[0]}  {r[1]:<7} {r[2]:<12} {r[3]:<10} {r[5][:16]}  {r[4]}" for r in rows))
"""


def make_mbox(path: Path, count: int) -> None:
    box = mailbox.mbox(str(path))
    rng = random.Random(7)
    words = ["payment", "plan", "invoice", "login", "refund", "screen", "button", "error", "card"]
    for n in range(count):
        msg = EmailMessage()
        msg["From"] = f"Customer {n} <customer{n}@customer.example>"
        msg["To"] = RECIPIENT
        msg["Subject"] = f"The {rng.choice(words)} {rng.choice(words)} does not work ({n})"
        msg["Date"] = formatdate()
        msg["Message-ID"] = make_msgid(domain="customer.example")
        msg.set_content(f"When I click the {rng.choice(words)} nothing happens.\nThanks, customer {n}\n")
        box.add(msg)
    box.close()


def write_config(workdir: Path, name: str = "ticketgate.toml", extra: str = "") -> Path:
    path = workdir / name
    path.write_text(
        f"""
[gateway]
addresses = ["{RECIPIENT}"]
ticket_prefix = "SP"
secret = "bench-secret-0123456789abcdef"

[database]
url = "sqlite:///{workdir / "ticketgate.db"}"

[smtp]
listen = "127.0.0.1:{_free_port()}"

[outbound]
relay = "dir:{workdir / "outgoing"}"

[storage]
blob_dir = "{workdir / "blobs"}"

[limits]
new_tickets_per_sender_per_hour = 0
{extra}
""",
        encoding="utf-8",
    )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")}
    env["PYTHONPATH"] = str(tree)
    return env


def _run(command: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def import_summary(config: Path, env: dict[str, str], cwd: Path) -> str:
    """Where `tickets list`'s import time goes: the total and the top-level packages' shares."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gateway.cli.main", "tickets", "list", "--config",
         str(config)],
        env=env, cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    total, shares = 0, dict.fromkeys(("sqlalchemy", "alembic", "mako", "jinja2", "gateway", "psycopg"), 0)
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
        if not found:
            continue
        micros, root = int(found.group(1)), found.group(2).split(".")[0]  # self time, by package
        total += micros
        if root in shares:
            shares[root] += micros
    parts = ", ".join(f"{name} {100 * micros / total:.0f} %" for name, micros in shares.items() if total)
    return f"{total / 1000:.0f} ms of imports ({parts})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000, help="tickets in the database (default 1000)")
    parser.add_argument("--rounds", type=int, default=10, help="runs of each command (default 10)")
    parser.add_argument("--before", type=Path, help="another tree whose commands run beside these")
    parser.add_argument("--prototypes", action="store_true", help="also run the two read-path prototypes")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from gateway.control_socket import socket_path

    with tempfile.TemporaryDirectory(prefix="cli-latency-") as temp:
        workdir = Path(temp)
        config = write_config(workdir)  # the serve's: no [control], the socket is on by default
        alone = write_config(workdir, "alone.toml")  # the same database; no serve runs on it
        stale = write_config(workdir, "stale.toml")
        off = write_config(workdir, "off.toml", '[control]\nsocket = ""')
        make_mbox(workdir / "mails.mbox", args.tickets)
        env = _env(ROOT)
        cli = [sys.executable, "-m", "gateway.cli.main"]
        ingest = [*cli, "ingest", "--mbox", str(workdir / "mails.mbox"), "--recipient", RECIPIENT]
        subprocess.run(
            [*ingest, "--config", str(config)], env=env, cwd=workdir, check=True, capture_output=True
        )
        stale_socket = socket_path(None, stale)  # in the working folder: the commands run there
        assert stale_socket is not None
        with socket.socket(socket.AF_UNIX) as dead:  # a socket file nobody listens on
            dead.bind(str(workdir / stale_socket))
        reads = {
            "tickets list": ["tickets", "list"],
            "tickets list --json": ["tickets", "list", "--json"],
            "tickets show": ["tickets", "show", "SP-1"],
            "status": ["status"],
            "inbox list": ["inbox", "list"],
        }
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "--help": ([*cli, "--help"], env),
        }
        for name, rest in reads.items():
            commands[f"{name} (serve's socket)"] = ([*cli, *rest, "--config", str(config)], env)
            commands[f"{name} (alone)"] = ([*cli, *rest, "--config", str(alone)], env)
            if args.before is not None:
                before_env = _env(args.before.resolve())
                commands[f"{name} (before)"] = ([*cli, *rest, "--config", str(config)], before_env)
        commands["tickets list (stale socket)"] = ([*cli, "tickets", "list", "--config", str(stale)], env)
        commands["tickets list (socket off)"] = ([*cli, "tickets", "list", "--config", str(off)], env)
        serve = subprocess.Popen([*cli, "serve", "--config", str(config)], env=env, cwd=workdir,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        served = socket_path(None, config)
        assert served is not None
        deadline = time.monotonic() + 60
        while not (workdir / served).exists():
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit("serve did not open its control socket")
            time.sleep(0.1)
        server = None
        if args.prototypes:
            socket_path_ = str(workdir / "prototype.sock")
            server = subprocess.Popen([sys.executable, "-c", SERVER, socket_path_], env=env, cwd=workdir,
                                      stdout=subprocess.PIPE)  # fmt: skip
            assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
            listing = ["tickets", "list", "--config", str(alone)]
            commands["prototype socket: tickets list"] = (
                [sys.executable, "-c", CLIENT, socket_path_, *listing], env)  # fmt: skip
            commands["prototype sqlite3: tickets list"] = (
                [sys.executable, "-c", PLAIN_SQLITE, str(alone)],
                env,
            )
        load = os.getloadavg()[0]
        try:
            times: dict[str, list[float]] = {name: [] for name in commands}
            rng = random.Random(1)
            for _ in range(args.rounds):
                order = list(commands)
                rng.shuffle(order)
                for name in order:
                    command, command_env = commands[name]
                    times[name].append(_run(command, command_env, workdir))
        finally:
            if server is not None:
                server.kill()
                server.wait()
            serve.terminate()
            serve.wait()
        base = statistics.median(times["python -c pass"])
        print(
            f"{args.tickets} tickets, {args.rounds} rounds, load average {load:.2f} at the start and "
            f"{os.getloadavg()[0]:.2f} at the end; median wall time and ratio to `python -c pass`:"
        )
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:<40} {median * 1000:8.1f} ms  {median / base:6.2f}x")
        print(f"tickets list (alone) imports: {import_summary(alone, env, workdir)}")
        if args.before is not None:
            before = import_summary(alone, _env(args.before.resolve()), workdir)
            print(f"tickets list imports (before): {before}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
