"""The benchmark scripts still run against the real daemon and pipeline, and print their figures.

Only that they run and what they report is checked, never how fast: timing belongs to the
benchmarks themselves (bench/README.md), not to a test suite on a shared machine.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

NUMBER = r"\d+(?:\.\d+)?"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=110, cwd=BENCH.parent
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _outcomes(out: str) -> dict[str, int]:
    """The last `outcomes:` line, as the dict it prints."""
    lines = [line for line in out.splitlines() if line.strip().startswith("outcomes:")]
    assert lines, out
    found = ast.literal_eval(lines[-1].split(":", 1)[1].strip())
    assert isinstance(found, dict)
    return found


def test_intake_bench_sends_every_mail_through_serve_and_reports_the_figures(database_url: str) -> None:
    # Given an empty database (SQLite, then PostgreSQL) and the real `serve`
    out = _run(
        str(BENCH / "bench_intake.py"),
        "--mails",
        "20",
        "--connections",
        "3",
        "--database-url",
        database_url,
    )
    # Then every mail was accepted, processed into a ticket, and each figure line is there
    assert "accepted:         20 of 20 (failures: none)" in out
    assert re.search(rf"accepted rate: +{NUMBER} mails/s", out), out
    assert re.search(rf"end-to-end rate: +{NUMBER} mails/s \(every mail processed after {NUMBER} s\)", out), (
        out
    )
    assert re.search(rf"accept latency: +p50 {NUMBER} ms, p99 {NUMBER} ms", out), out
    assert re.search(rf"cpu per mail: +{NUMBER} ms serve", out), out
    assert re.search(
        rf"peak memory: +{NUMBER} MB \(VmHWM, serve and its worker processes\); "
        r"RSS at 10/25/50/75/100 % processed: ",
        out,
    ), out
    outcomes = _outcomes(out)
    assert outcomes.get("quarantine", 0) == 0, out
    assert sum(n for key, n in outcomes.items() if key != "tickets in table") == 20, out
    assert outcomes["tickets in table"] >= 1, out


def test_intake_bench_keeps_connections_open_with_reuse() -> None:
    out = _run(
        str(BENCH / "bench_intake.py"), "--mails", "10", "--connections", "2", "--reuse", "--mix", "plain"
    )
    assert "accepted:         10 of 10 (failures: none)" in out
    assert "(kept open)" in out
    assert "'tickets in table': 10" in out, out


def test_pipeline_bench_processes_the_corpus_and_reports_mails_per_second(corpus_dir: Path) -> None:
    out = _run(
        str(BENCH / "bench_pipeline.py"), "--corpus", str(corpus_dir), "--rounds", "1", "--synthetic", "20"
    )
    assert re.search(rf"pipeline rate: +{NUMBER} mails/s median", out), out
    assert re.search(rf"parse only: +{NUMBER} mails/s", out), out
    corpus_size = len(list(corpus_dir.rglob("*.eml")))
    assert f"corpus {corpus_dir}: {corpus_size} mails" in out
    # every synthetic mail was processed, none quarantined (the corpus has its bounces and duplicates)
    outcomes = _outcomes(out)
    assert sum(outcomes.values()) == 20 and "quarantine" not in outcomes, out


def test_bounce_rate_prints_both_halves_for_each_candidate(corpus_dir: Path) -> None:
    out = _run(str(BENCH / "bounce_rate.py"), "--corpus", str(corpus_dir))
    assert "tuning half (25 files)" in out and "checking half (25 files)" in out
    adopted = [line for line in out.splitlines() if line.startswith("ticketgate (adopted)")]
    assert len(adopted) == 2
    for line in adopted:
        assert re.search(rf"\d+/25 +{NUMBER}%", line) and re.search(rf"\d+/29 +{NUMBER}%", line), line


def test_nodes_benchmark_runs_two_nodes_on_postgres_and_reports(postgres_url: str) -> None:
    out = _run(
        str(BENCH / "bench_nodes.py"),
        "--postgres",
        postgres_url,
        "--mails",
        "20",
        "--nodes",
        "2",
        "-c",
        "2",
    )
    rows = re.findall(rf"^\s+(\d)\s+({NUMBER})\s+({NUMBER})\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    assert [(nodes, refused, tickets) for nodes, _, _, refused, tickets in rows] == [("2", "0", "20")], out
    assert "load average" in out


def test_relay_cost_bench_measures_both_relays_one_at_a_time_and_in_sessions() -> None:
    out = _run(str(BENCH / "relay_cost.py"), "--n", "32", "--before", str(BENCH.parent))
    for relay in ("dir", "smtp (plain)", "smtp (STARTTLS + AUTH)"):
        for how in ("before: one at a time", r"one at a time \(send\)", "sessions of 16"):
            assert re.search(rf"^{re.escape(relay)} +{how} +{NUMBER} +{NUMBER}$", out, re.M), out


def test_ack_latency_bench_measures_mails_to_their_acknowledgement_in_the_folder() -> None:
    out = _run(str(BENCH / "ack_latency.py"), "--mails", "3", "--gap", "0.1")
    assert re.search(rf"end of DATA -> 250: +p50 {NUMBER} ms, p90 {NUMBER} ms", out), out
    assert re.search(rf"end of DATA -> ack in folder: p50 {NUMBER} ms, p90 {NUMBER} ms", out), out
    assert "acknowledged:                 3 of 3 (lost: 0)" in out, out
    assert re.search(rf"first mail after start: +{NUMBER} ms", out), out


def test_cli_latency_bench_prints_each_command_as_a_ratio_to_python_startup() -> None:
    out = _run(str(BENCH / "cli_latency.py"), "--tickets", "5", "--rounds", "1", "--prototypes")
    for name in ("python -c pass", "--help", "tickets list (alone)", "tickets show (alone)",
                 "status (alone)", "inbox list (alone)", "tickets list (serve's socket)",
                 "tickets show (serve's socket)", "status (serve's socket)", "inbox list (serve's socket)",
                 "tickets list (stale socket)", "tickets list (socket off)",
                 "prototype socket: tickets list", "prototype sqlite3: tickets list"):  # fmt: skip
        assert re.search(rf"^  {re.escape(name)} +{NUMBER} ms +{NUMBER}x$", out, re.MULTILINE), (name, out)
    assert re.search(
        rf"tickets list \(alone\) imports: {NUMBER} ms of imports \(sqlalchemy {NUMBER} %", out
    ), out


def test_compare_bench_runs_bare_sqlite_and_postgres_in_one_round_and_gives_ratios(postgres_url: str) -> None:
    out = _run(
        str(BENCH / "bench_compare.py"),
        "--rounds",
        "1",
        "--mails",
        "12",
        "--connections",
        "2",
        "--postgres",
        postgres_url,
    )
    assert re.search(r"^\| \| bare \| sqlite \| postgres \|$", out, re.MULTILINE), out
    assert re.search(rf"^\| accepted mails/s \| {NUMBER} \| {NUMBER} \| {NUMBER} \|$", out, re.MULTILINE), out
    # the daemons' rates as ratios to the bare server of the same round, and SQLite against PostgreSQL
    assert re.search(rf"^\| end to end ÷ bare \(same round\) \|  \| {NUMBER} \| {NUMBER} \|$", out, re.M), out
    assert re.search(
        rf"^\| SQLite ÷ PostgreSQL, end to end \(same round\) \|  \|  \| {NUMBER} \|$", out, re.M
    ), out
    assert "load average (1/5/15 min) before and after each round" in out


def test_intake_bench_waits_for_every_notification_with_until_sent() -> None:
    out = _run(str(BENCH / "bench_intake.py"), "--mails", "8", "--connections", "2", "--until-sent")
    assert re.search(rf"sent rate: +{NUMBER} mails/s \(every notification sent after {NUMBER} s\)", out), out
    assert "'tickets in table': " in out, out


def test_statements_bench_counts_both_databases(postgres_url: str) -> None:
    out = _run(
        str(BENCH / "statements_per_mail.py"), "--small", "3", "--large", "8", "--postgres", postgres_url
    )
    assert re.search(rf"sqlite: {NUMBER} statements \({NUMBER} notifications sent\)", out), out
    assert re.search(rf"postgres: {NUMBER} statements, {NUMBER} round trips \({NUMBER} notifications", out), (
        out
    )
