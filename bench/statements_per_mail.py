"""Statements and round trips per processed mail, on SQLite and PostgreSQL: counts that repeat exactly.

Run from the project root: ``.venv/bin/python bench/statements_per_mail.py [--small 40 --large 200]``.

On PostgreSQL every statement is a round trip to the server: the client's CPU for sending it and
reading the answer, and the server's for running it, on the same two cores. Timings on this
machine swing by half between runs (docs/performance/throughput.md); these counts do not. For each
database this processes `--small`, then `--large` generated mails (bench_pipeline.py's mix, 500
customers, a staff triage address so a new ticket queues the acknowledgement and staff's mail),
each run on a fresh database, the mails stored before counting starts; then sends every
notification through the folder relay. It prints the difference divided by the difference in
mails: the cost of one more mail, without what both runs share.

Counted on each DB-API connection the daemon's engines open:

- PostgreSQL: each `execute` and each `executemany` of a cursor (psycopg sends an executemany's
  rows in one round trip), each `BEGIN` psycopg sends before a transaction's first statement, and
  each commit and rollback: the round trips. Rows of an executemany, counted one by one, give the
  statements the server runs.
- SQLite: every statement SQLite runs (its trace callback), executemany rows one by one; there is
  no round trip, each is a call into the library.

It asserts nothing; `tests/integration/test_bench_smoke.py` only checks that it runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from bench_compare import DEFAULT_POSTGRES, drop_postgres, fresh_postgres  # noqa: E402
from bench_intake import write_config  # noqa: E402
from bench_pipeline import ENVELOPE  # noqa: E402
from instructions_per_mail import STAFF  # noqa: E402
from intake_mails import DEFAULT_MIX, make_mails, parse_mix  # noqa: E402


def counted_run(url: str, count: int, workdir: Path) -> Counter[str]:
    """Process and send `count` fresh mails on the database at `url`; what was counted."""
    import psycopg
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    import gateway.pipeline.processor as processor_module
    from gateway.config import load_settings
    from gateway.daemon.runtime import build_runtime

    counts: Counter[str] = Counter()
    counting = [False]

    class CountingCursor(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if counting[0]:
                counts["round trips"] += 1
                counts["statements"] += 1
            return super().execute(query, params, **kwargs)

        def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            rows = list(params_seq)
            if counting[0]:
                counts["round trips"] += 1
                counts["statements"] += len(rows)
            return super().executemany(query, rows, **kwargs)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, psycopg.Connection):
            dbapi_connection.cursor_factory = CountingCursor
        else:  # sqlite3

            def traced(_statement: str) -> None:
                if counting[0]:
                    counts["statements"] += 1

            dbapi_connection.set_trace_callback(traced)

    def on_transaction(_conn: Any) -> None:
        if counting[0] and url.startswith("postgresql"):
            counts["round trips"] += 1  # BEGIN, COMMIT or ROLLBACK: a statement of its own
            counts["statements"] += 1

    event.listen(Engine, "connect", on_connect)
    for name in ("begin", "commit", "rollback"):
        event.listen(Engine, name, on_transaction)
    processor_module.BATCH_SECONDS = 3600.0  # full batches, whatever the machine's speed
    config = write_config(workdir, url, port=2525, workers=1)
    config.write_text(config.read_text(encoding="utf-8") + STAFF, encoding="utf-8")
    runtime = build_runtime(load_settings(config))
    try:
        mails = make_mails(count, 1, parse_mix(DEFAULT_MIX), "statements", 500)
        runtime.inbox.add_many([(raw, ENVELOPE) for raw in mails])
        processor, sender = runtime.processor("bench"), runtime.sender("bench")
        counting[0] = True
        processed = 0
        while results := processor.process_available():
            processed += len(results)
        counts["sent"] = len(sender.send_due(limit=100_000))
        counting[0] = False
        counts["processed"] = processed
    finally:
        runtime.close()
        event.remove(Engine, "connect", on_connect)
        for name in ("begin", "commit", "rollback"):
            event.remove(Engine, name, on_transaction)
    return counts


@contextmanager
def database(kind: str, postgres: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'ticketgate.db'}"
        return
    url, name = fresh_postgres(postgres)
    try:
        yield url
    finally:
        drop_postgres(postgres, name)


def per_mail(kind: str, small: int, large: int, postgres: str) -> dict[str, float]:
    runs = []
    for count in (small, large):
        with (
            tempfile.TemporaryDirectory(prefix="tg-statements-") as scratch,
            database(kind, postgres, Path(scratch)) as url,
        ):
            runs.append(counted_run(url, count, Path(scratch)))
    few, many = runs
    if few["processed"] != small or many["processed"] != large:
        raise SystemExit(f"{kind}: processed {few['processed']} and {many['processed']} mails")
    return {key: (many[key] - few[key]) / (large - small) for key in ("statements", "round trips", "sent")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=40, help="mails in the first run (default 40)")
    parser.add_argument("--large", type=int, default=200, help="mails in the second run (default 200)")
    parser.add_argument("--databases", default="sqlite,postgres", help="which (default sqlite,postgres)")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help=f"its server (default {DEFAULT_POSTGRES})"
    )
    args = parser.parse_args(argv)
    print(f"per processed mail, processing and sending, mix {DEFAULT_MIX}, full batches:")
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        found = per_mail(kind, args.small, args.large, args.postgres)
        trips = f", {found['round trips']:.2f} round trips" if kind == "postgres" else ""
        print(
            f"  {kind}: {found['statements']:.2f} statements{trips} ({found['sent']:.2f} notifications sent)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
