"""CPU time per thread of `serve` and its worker processes, for `bench_intake.py --threads`.

The kernel counts each thread's CPU time (`/proc/PID/task/TID/stat`), exactly and at no cost to
the run, unlike a sampling profiler, which on this shared two-core machine falls seconds behind
and slows the run it measures by half. Python does not give its threads' names to the kernel, so
the names come from `py-spy dump` (one look at the end of the run, `pip install py-spy`); without
py-spy each thread is shown by its process and thread id.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def task_cpu(pids: list[int]) -> dict[tuple[int, int], float]:
    """(process id, thread id) -> user + system CPU seconds, for every thread of `pids`."""
    found: dict[tuple[int, int], float] = {}
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:  # gone meanwhile
            continue
        for tid in tasks:
            try:
                fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            found[(pid, int(tid))] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return found


def thread_names(pids: list[int]) -> dict[tuple[int, int], str]:
    """(process id, thread id) -> the Python thread's name, from `py-spy dump` (empty without it)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        return {}
    names: dict[tuple[int, int], str] = {}
    for pid in pids:
        command = [py_spy, "dump", "--pid", str(pid)]
        dump = subprocess.run(command, capture_output=True, text=True, check=False)
        for match in re.finditer(r'^Thread (\d+) \([^)]*\): "([^"]+)"', dump.stdout, re.MULTILINE):
            names[(pid, int(match.group(1)))] = match.group(2)
    return names


def per_mail(
    before: dict[tuple[int, int], float],
    after: dict[tuple[int, int], float],
    names: dict[tuple[int, int], str],
    *,
    serve_pid: int,
    mails: int,
) -> list[tuple[str, float]]:
    """Each thread's CPU milliseconds per mail over the run, largest first (threads under 0.01 ms
    left out); named `serve: NAME` or `worker PID: NAME`."""
    rows: list[tuple[str, float]] = []
    for key, seconds in after.items():
        ms = (seconds - before.get(key, 0.0)) * 1000 / max(1, mails)
        if ms < 0.01:
            continue
        pid, tid = key
        owner = "serve" if pid == serve_pid else f"worker {pid}"
        rows.append((f"{owner}: {names.get(key, f'thread {tid}')}", ms))
    return sorted(rows, key=lambda row: -row[1])
