"""Several nodes on one PostgreSQL (SPEC §9): mails/s end to end for 1, 2 and 3 `serve` nodes.

Run from the project root (an empty database is made for each run on the server named):
``.venv/bin/python bench/bench_nodes.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test``.
For each node count it creates a fresh database, starts that many ``python -m gateway.cli.main serve``
(each with its own SMTP port, `processing.processes` at its default, blobs in the database,
notifications to a folder), sends the mails from C client threads spread over the nodes' ports
(smtplib, one connection per thread and node), and polls the database (read-only) until every
mail is a ticket and every notification is sent. It prints accepted mails/s and mails/s end to end
(every `250` durable, every ticket committed, every notification handed to the relay).
No figure here is asserted anywhere: this is a measuring tool, not a test. All nodes share one
machine here, so more nodes share its cores too: the figures show what coordination costs, not
what more machines would give.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it
sys.path.insert(0, str(ROOT / "bench"))

from bench_intake import free_port, start_serve, stop_serve  # noqa: E402
from intake_mails import RECIPIENT, make_mail, screenshot_png, sender_of  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"tg_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def node_config(workdir: Path, database_url: str, port: int, name: str) -> Path:
    workdir.mkdir(parents=True)
    path = workdir / "ticketgate.toml"
    path.write_text(
        f"""
[gateway]
addresses = ["{RECIPIENT}"]
secret = "bench-secret-0123456789abcdef"
node_name = "{name}"

[database]
url = "{database_url}"

[smtp]
listen = "127.0.0.1:{port}"
max_connections = 1000

[outbound]
relay = "dir:{workdir / "outgoing"}"
""",
        encoding="utf-8",
    )
    return path


def send_spread(ports: Sequence[int], mails: Sequence[tuple[str, bytes]], threads: int) -> int:
    """Send mail i to node i mod N from `threads` clients; returns the number refused."""
    refused = [0]
    lock = threading.Lock()

    def client(offset: int) -> None:
        connections: dict[int, smtplib.SMTP] = {}
        try:
            for index in range(offset, len(mails), threads):
                port = ports[index % len(ports)]
                sender, raw = mails[index]
                try:
                    if port not in connections:
                        connections[port] = smtplib.SMTP("127.0.0.1", port, timeout=120)
                    connections[port].sendmail(sender, [RECIPIENT], raw)
                except (smtplib.SMTPException, OSError):
                    with lock:
                        refused[0] += 1
                    dropped = connections.pop(port, None)
                    if dropped is not None:
                        dropped.close()
        finally:
            for connection in connections.values():
                connection.quit()

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return refused[0]


def one_run(admin_url: str, nodes: int, count: int, threads: int, senders: int) -> dict[str, float]:
    png = screenshot_png()
    run_id = uuid.uuid4().hex[:8]
    mails = []
    for index in range(count):
        raw = make_mail("plain", index, run_id, 1024, png, senders=senders)
        mails.append((sender_of(index, senders), raw))
    with fresh_database(admin_url) as url, tempfile.TemporaryDirectory(prefix="tg-bench-nodes-") as tmp:
        ports = [free_port() for _ in range(nodes)]
        configs = [
            node_config(Path(tmp) / f"node-{n}", url, port, f"node-{n}") for n, port in enumerate(ports)
        ]
        subprocess.run(
            [sys.executable, "-m", "gateway.cli.main", "db", "upgrade", "--config", str(configs[0])],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        procs = [
            start_serve(config, config.parent / "serve.log", port)
            for config, port in zip(configs, ports, strict=True)
        ]
        engine = create_engine(url)
        try:
            started = time.monotonic()
            refused = send_spread(ports, mails, threads)
            accepted_in = time.monotonic() - started
            with engine.connect() as connection:
                while True:
                    pending = connection.execute(
                        text("SELECT count(*) FROM inbox WHERE state IN ('pending', 'processing')")
                    ).scalar()
                    unsent = connection.execute(
                        text("SELECT count(*) FROM outbox WHERE status IN ('queued', 'retry')")
                    ).scalar()
                    connection.rollback()
                    if pending == 0 and unsent == 0:
                        break
                    time.sleep(0.05)
            done_in = time.monotonic() - started
            with engine.connect() as connection:
                tickets = connection.execute(text("SELECT count(*) FROM tickets")).scalar()
        finally:
            engine.dispose()
            for proc in procs:
                stop_serve(proc)
    accepted = count - refused
    return {
        "nodes": nodes,
        "accepted_per_s": accepted / accepted_in,
        "end_to_end_per_s": accepted / done_in,
        "refused": refused,
        "tickets": float(tickets or 0),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", required=True, help="a PostgreSQL URL whose server may create databases"
    )
    parser.add_argument("--nodes", default="1,2,3", help="node counts to measure (default 1,2,3)")
    parser.add_argument("--mails", "-n", type=int, default=1500, help="mails per run (default 1500)")
    parser.add_argument("--connections", "-c", type=int, default=6, help="client threads (default 6)")
    parser.add_argument("--senders", type=int, default=500, help="distinct customers (default 500)")
    parser.add_argument("--runs", type=int, default=1, help="runs per node count (default 1)")
    args = parser.parse_args(argv)
    print(f"{args.mails} mails of 1 KB from {args.senders} customers over {args.connections} client threads")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("nodes  accepted mails/s  end to end mails/s  refused  tickets")
    for nodes in [int(n) for n in args.nodes.split(",")]:
        for _ in range(args.runs):
            r = one_run(args.postgres, nodes, args.mails, args.connections, args.senders)
            print(
                f"{nodes:>5}  {r['accepted_per_s']:>16.0f}  {r['end_to_end_per_s']:>18.0f}  "
                f"{r['refused']:>7.0f}  {r['tickets']:>7.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
