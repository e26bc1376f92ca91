"""How long intake's group commit waits for SQLite's write lock, and how long each writer holds it.

Instrumentation lives here, not in the product: for each tree compared (`--tree LABEL=PATH`), the
`gateway` package is copied to a temporary folder and wrappers are appended to the copy's
gateway/store/db.py (around `SqliteWriteLock.acquire` and `release`) and
gateway/pipeline/processor.py (around `Processor._apply_batch`); they append one line per event to
the file `TG_LOCK_WAIT_LOG` names, from `serve` and its worker processes alike. Then
`bench_intake.run` (the daemon on a fresh SQLite file, `--until-sent`) runs on the copy, the trees
taking turns in each round (the order rotates), and this prints, per tree: the accept latency the
client saw, intake's wait for the lock (from asking to holding), how long intake, the processors
and the other writers held it, and how many mails a processor transaction committed.

    .venv/bin/python bench/write_lock_wait.py --tree before=/tmp/before --tree after=. --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_intake import run

ROOT = Path(__file__).resolve().parent.parent

_DB_PROBE = """

# --- appended by bench/write_lock_wait.py: not part of the product ---
import os as _wl_os

if _wl_os.environ.get("TG_LOCK_WAIT_LOG"):
    _wl_log = open(_wl_os.environ["TG_LOCK_WAIT_LOG"], "a", buffering=1)  # noqa: SIM115
    _wl_acquire, _wl_release = SqliteWriteLock.acquire, SqliteWriteLock.release
    _wl_held: dict[int, tuple[float, str]] = {}

    def _wl_role() -> str:
        name = threading.current_thread().name
        if name.startswith("inbox-writer"):
            return "intake"
        return f"other:{_wl_os.getpid()}:{name}"

    def _wl_timed_acquire(self: SqliteWriteLock, dbapi_connection: Any) -> None:
        nested = self._owner_thread == threading.get_ident()
        started = time.monotonic()
        _wl_acquire(self, dbapi_connection)
        if not nested:
            now = time.monotonic()
            _wl_held[id(_unwrapped(dbapi_connection))] = (now, _wl_role())
            _wl_log.write(f"wait {_wl_role()} {now - started:.6f}\\n")

    def _wl_timed_release(self: SqliteWriteLock, dbapi_connection: Any) -> None:
        owned = self._owner is not None and self._owner is _unwrapped(dbapi_connection)
        _wl_release(self, dbapi_connection)
        if owned:
            since, role = _wl_held.pop(id(_unwrapped(dbapi_connection)), (None, ""))
            if since is not None:
                _wl_log.write(f"hold {role} {time.monotonic() - since:.6f}\\n")

    SqliteWriteLock.acquire = _wl_timed_acquire  # type: ignore[method-assign]
    SqliteWriteLock.release = _wl_timed_release  # type: ignore[method-assign]
"""

_PROCESSOR_PROBE = """

# --- appended by bench/write_lock_wait.py: not part of the product ---
import os as _wl_os

if _wl_os.environ.get("TG_LOCK_WAIT_LOG"):
    _wl_log = open(_wl_os.environ["TG_LOCK_WAIT_LOG"], "a", buffering=1)  # noqa: SIM115
    _wl_apply = Processor._apply_batch

    def _wl_timed_apply(self: Processor, mails: Any, results: Any) -> Any:
        left = _wl_apply(self, mails, results)
        _wl_log.write(f"batch {len(mails) - len(left)}\\n")
        return left

    Processor._apply_batch = _wl_timed_apply  # type: ignore[method-assign]
"""


def instrumented(tree: Path, into: Path) -> Path:
    """A copy of `tree`'s gateway package (and templates) with the probes appended."""
    shutil.copytree(tree / "gateway", into / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    if (tree / "templates").exists():
        shutil.copytree(tree / "templates", into / "templates")
    for module, probe in (("store/db.py", _DB_PROBE), ("pipeline/processor.py", _PROCESSOR_PROBE)):
        path = into / "gateway" / module
        path.write_text(path.read_text() + probe)
    return into


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(log: Path) -> dict[str, float]:
    waits: dict[str, list[float]] = {"intake": [], "other": []}
    holds: dict[str, list[float]] = {"intake": [], "other": []}
    batches: list[int] = []
    for line in log.read_text().splitlines():
        kind, *rest = line.split()
        if kind == "batch":
            batches.append(int(rest[0]))
            continue
        role, seconds = rest
        group = "intake" if role == "intake" else "other"
        (waits if kind == "wait" else holds)[group].append(float(seconds) * 1000)
    return {
        "intake wait p50 ms": _pct(waits["intake"], 0.5),
        "intake wait p99 ms": _pct(waits["intake"], 0.99),
        "intake wait max ms": max(waits["intake"], default=float("nan")),
        "intake commits": len(waits["intake"]),
        "intake hold p50 ms": _pct(holds["intake"], 0.5),
        "intake hold p99 ms": _pct(holds["intake"], 0.99),
        "others' holds (processor, claims, sender…)": len(holds["other"]),
        "others' hold p50 ms": _pct(holds["other"], 0.5),
        "others' hold p99 ms": _pct(holds["other"], 0.99),
        "processor transactions": len(batches),
        "mails per processor transaction": statistics.fmean(batches) if batches else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mails", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    trees = [(label, Path(path).resolve()) for label, _, path in (t.partition("=") for t in args.tree)]
    rows: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    with tempfile.TemporaryDirectory(prefix="tg-lockwait-") as tmp:
        copies = {label: instrumented(path, Path(tmp) / label) for label, path in trees}
        for round_no in range(args.rounds):
            order = trees[round_no % len(trees) :] + trees[: round_no % len(trees)]
            for label, _ in order:
                log = Path(tmp) / f"{label}-{round_no}.log"
                os.environ["TG_LOCK_WAIT_LOG"] = str(log)
                report = run(
                    argparse.Namespace(
                        tree=str(copies[label]), mails=args.mails, connections=args.connections,
                        size_kb=1, mix="plain=7,screenshot=1,replies=2", reuse=False, senders=500,
                        database_url=None, workers=args.workers, processes=args.processes,
                        server="serve", poll=0.25, timeout=600.0, wait_idle=None, keep=False,
                        profile=None, until_sent=True,
                    )
                )  # fmt: skip
                del os.environ["TG_LOCK_WAIT_LOG"]
                figures = {
                    "accept p50 ms": float(report["latency_p50_ms"]),  # type: ignore[arg-type]
                    "accept p99 ms": float(report["latency_p99_ms"]),  # type: ignore[arg-type]
                    "accepted mails/s": float(report["accept_rate"]),  # type: ignore[arg-type]
                    "end to end mails/s": float(report["end_to_end_rate"]),  # type: ignore[arg-type]
                    "others' load, cores": float(report["other_processes_cores"]),  # type: ignore[arg-type]
                    **summarize(log),
                }
                rows[label].append(figures)
                line = ", ".join(f"{k} {v:.1f}" for k, v in figures.items())
                print(f"round {round_no + 1} {label}: {line}")
                sys.stdout.flush()
    labels = [label for label, _ in trees]
    print()
    print("| | " + " | ".join(labels) + " |")
    print("| --- |" + " --- |" * len(labels))
    for key in rows[labels[0]][0]:
        cells = []
        for label in labels:
            values = [r[key] for r in rows[label]]
            cells.append(" / ".join(f"{v:.1f}" for v in values))
        print(f"| {key} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
