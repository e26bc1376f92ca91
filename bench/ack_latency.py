"""How long one mail waits for its acknowledgement at low load: from the end of DATA to the
`ticket_created` mail's `.eml` in the outgoing folder of a real `ticketgate serve` (`dir:` relay).

Run from the project root: ``.venv/bin/python bench/ack_latency.py [--mails 40] [--processes 1]``.
It starts ``serve`` on a fresh database, sends a first mail and waits for its acknowledgement
(reported apart: the worker processes may still be starting), then sends one mail at a time, each
from a sender of its own (the acknowledgement limit per sender stays out of the way), waits for
that sender's acknowledgement to appear in the folder, then pauses a random while (``--gap``) so
the mails fall on every phase of any polling in the daemon. The clock starts when the client hands over DATA's
content (just before `smtplib.SMTP.data`) and stops when the `.eml` is seen (the folder is looked
at every millisecond; the relay renames finished files into place, so a file seen is whole).

With ``--before PATH`` the tree at PATH (e.g. ``git archive COMMIT gateway | tar -x -C /tmp/b``)
runs a serve of its own beside this one, on a database of its own, and the two take turns mail by
mail, so the machine's load weighs on each alike; the last line gives their medians as a ratio.
No figure here is asserted anywhere: this is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPIENT = "support@smilepass.example"
TIMEOUT_SECONDS = 15.0  # a mail whose acknowledgement has not come by then counts as lost


@dataclass
class Serve:
    """One `serve` under test: its tree, folder, port and what it measured."""

    name: str
    tree: Path
    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    accepted_ms: list[float] = field(default_factory=list)  # end of DATA -> 250
    ack_ms: list[float] = field(default_factory=list)  # end of DATA -> ack in the folder
    lost: int = 0
    first_ms: float | None = None  # the first mail after start, not counted in the others

    @property
    def outgoing(self) -> Path:
        return self.workdir / "outgoing"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(serve: Serve, database_url: str, processes: int, extra: str) -> Path:
    path = serve.workdir / "ticketgate.toml"
    path.write_text(
        f"""
[gateway]
addresses = ["{RECIPIENT}"]
secret = "bench-secret-0123456789abcdef"

[database]
url = "{database_url}"

[smtp]
listen = "127.0.0.1:{serve.port}"

[outbound]
relay = "dir:{serve.outgoing}"

[storage]
blob_dir = "{serve.workdir / "blobs"}"

[staff]
triage = "triage@smilepass.example"

[processing]
processes = {processes}
{extra}
""",
        encoding="utf-8",
    )
    return path


def start(serve: Serve, config: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")}
    env["PYTHONPATH"] = str(serve.tree)
    log = (serve.workdir / "serve.log").open("wb")
    serve.process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, cwd=serve.workdir, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if serve.process.poll() is not None:
            raise SystemExit(f"{serve.name}: serve exited:\n{(serve.workdir / 'serve.log').read_text()}")
        try:
            with smtplib.SMTP("127.0.0.1", serve.port, timeout=5) as probe:
                probe.noop()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{serve.name}: serve did not listen within 60 s")


def stop(serve: Serve) -> None:
    if serve.process is not None and serve.process.poll() is None:
        serve.process.send_signal(signal.SIGTERM)
        try:
            serve.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.process.kill()
            serve.process.wait()


def make_mail(sender: str, index: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = RECIPIENT
    msg["Subject"] = f"Payment plan {index} will not save"
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="customer.example")
    msg.set_content("When I click ADD on the payment plan page nothing happens.\nCould you look into it?\n")
    return msg.as_bytes()


def _acknowledged(folder: Path, seen: set[str], sender: str) -> bool:
    """Whether a new finished `.eml` in `folder` is addressed to `sender` (each file read once)."""
    found = False
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name in seen or entry.name.startswith(".") or not entry.name.endswith(".eml"):
                continue
            seen.add(entry.name)
            with open(entry.path, "rb") as handle:
                headers = BytesHeaderParser().parse(handle)
            found = found or sender in str(headers.get("To", ""))
    return found


def probe(serve: Serve, index: int, seen: set[str]) -> None:
    """One mail to `serve`; records its latencies (or counts it lost)."""
    sender = f"probe{index}-{serve.name}@customer.example"
    raw = make_mail(sender, index)
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail(sender)
        smtp.rcpt(RECIPIENT)
        started = time.perf_counter()
        code, reply = smtp.data(raw)
        accepted = time.perf_counter()
    if code != 250:
        raise SystemExit(f"{serve.name}: DATA answered {code} {reply!r}")
    serve.accepted_ms.append((accepted - started) * 1000)
    serve.outgoing.mkdir(exist_ok=True)
    while time.perf_counter() - started < TIMEOUT_SECONDS:
        if _acknowledged(serve.outgoing, seen, sender):
            serve.ack_ms.append((time.perf_counter() - started) * 1000)
            return
        time.sleep(0.001)
    serve.lost += 1


def _summary(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"p50 {statistics.median(ordered):.1f} ms, p90 {p90:.1f} ms, "
        f"min {ordered[0]:.1f} ms, max {ordered[-1]:.1f} ms"
    )


def report(serves: Sequence[Serve], mails: int, verbose: bool = False) -> None:
    for serve in serves:
        print(f"[{serve.name}] {serve.tree}")
        print(f"  end of DATA -> 250:          {_summary(serve.accepted_ms)}")
        print(f"  end of DATA -> ack in folder: {_summary(serve.ack_ms)}")
        print(f"  acknowledged:                 {len(serve.ack_ms)} of {mails} (lost: {serve.lost})")
        first = "lost" if serve.first_ms is None else f"{serve.first_ms:.1f} ms"
        print(f"  first mail after start:       {first} (not in the figures above)")
        if verbose:
            print("  each (ms):                    " + " ".join(f"{value:.0f}" for value in serve.ack_ms))
    if len(serves) == 2 and serves[0].ack_ms and serves[1].ack_ms:
        ratio = statistics.median(serves[1].ack_ms) / statistics.median(serves[0].ack_ms)
        print(f"median ack latency, {serves[1].name} / {serves[0].name}: {ratio:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=40, help="mails per serve (default 40)")
    parser.add_argument(
        "--gap", type=float, default=1.0, help="pause between mails: 0.05 s plus up to this (default 1.0)"
    )
    parser.add_argument("--processes", type=int, default=1, help="processing.processes (default 1)")
    parser.add_argument("--database-url", help="this tree's database (default: SQLite in a temp folder)")
    parser.add_argument("--before", type=Path, help="another tree to measure beside this one")
    parser.add_argument("--before-database-url", help="the other tree's database (default: SQLite)")
    parser.add_argument("--config-extra", default="", help="TOML lines added to this tree's config")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="also print each mail's latency")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="ack-latency-") as temp:
        serves: list[tuple[Serve, str, str]] = []
        if args.before is not None:
            before = Serve("before", args.before.resolve(), Path(temp) / "before", free_port())
            serves.append((before, args.before_database_url or "", ""))
        serves.append((Serve("this", ROOT, Path(temp) / "this", free_port()), args.database_url or "",
                       args.config_extra))  # fmt: skip
        try:
            for serve, url, extra in serves:
                serve.workdir.mkdir(parents=True)
                url = url or f"sqlite:///{serve.workdir / 'ticketgate.db'}"
                start(serve, write_config(serve, url, args.processes, extra))
            seen: dict[str, set[str]] = {serve.name: set() for serve, _, _ in serves}
            for serve, _, _ in serves:  # the worker processes may still be starting: apart
                probe(serve, -1, seen[serve.name])
                serve.first_ms = serve.ack_ms.pop() if serve.ack_ms else None
                serve.accepted_ms.clear()
            for index in range(args.mails):
                for serve, _, _ in serves:
                    probe(serve, index, seen[serve.name])
                    time.sleep(0.05 + rng.uniform(0.0, args.gap))
        finally:
            for serve, _, _ in serves:
                stop(serve)
        report([serve for serve, _, _ in serves], args.mails, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
