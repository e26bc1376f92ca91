"""Instructions per accepted mail of SMTP intake, beside bare aiosmtpd, counted by valgrind.

Run from the project root: ``.venv/bin/python bench/intake_instructions.py [--small 20 --large 80]``.
Timed figures on this shared machine move by 2-3 times between days; instruction counts repeat.
For each server of `bench_intake.py --server` — `bare` (aiosmtpd answering 250, storing nothing)
and `intake` (ticketgate's SMTP intake and group commit into a fresh SQLite inbox, no processing) —
it runs the server under `valgrind --tool=callgrind`, sends it `--small` and then, in another run,
`--large` mails one after another (one client, a new connection per mail, as MTAs mostly deliver),
stops it with SIGTERM, and prints the difference of the two counts divided by the difference in
mails: the instructions of one more mail, without the start-up both runs share. The client runs
outside valgrind and is not counted. Takes a few minutes; needs valgrind. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_intake import ROOT, free_port, write_config
from intake_mails import DEFAULT_MIX, RECIPIENT, make_mails, parse_mix

BENCH_INTAKE = Path(__file__).resolve().parent / "bench_intake.py"


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`, asked of /proc (a probe connection would be
    an SMTP session the count includes)."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
            return True
    return False


def count(mode: str, mails: Sequence[bytes], senders: Sequence[str]) -> int:
    """What valgrind counted for one server run of `mode` taking `mails`."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="tg-intake-instructions-") as scratch:
        workdir = Path(scratch)
        port = free_port()
        config = write_config(workdir, f"sqlite:///{workdir / 'ticketgate.db'}", port, workers=1)
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
            sys.executable, str(BENCH_INTAKE), "--run-server", mode, str(config),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=workdir)
        try:
            deadline = time.monotonic() + 600
            while not _listening(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the {mode} server did not start:\n{server.communicate()[1][-2000:]}")
                time.sleep(0.2)
            for raw, mail_from in zip(mails, senders, strict=True):
                with smtplib.SMTP("127.0.0.1", port, timeout=600) as client:
                    client.sendmail(mail_from, [RECIPIENT], raw)
            server.send_signal(signal.SIGTERM)
            _, stderr = server.communicate(timeout=600)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    found = re.search(r"Collected : (\d+)", stderr)
    if server.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({server.returncode}):\n{stderr[-2000:]}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10, help="mails in the first run (default 10)")
    parser.add_argument("--large", type=int, default=40, help="mails in the second run (default 40)")
    parser.add_argument("--servers", default="bare,intake", help="of bare, intake (default both)")
    args = parser.parse_args(argv)
    mails = make_mails(args.large, 1024, parse_mix(DEFAULT_MIX), "instructions", 500)
    senders = [
        (re.search(rb"^From: [^<\r\n]*<([^>]+)>", raw, re.MULTILINE) or re.search(rb"()", raw))
        .group(1)
        .decode()
        or "maria@customer.example"
        for raw in mails
    ]
    per_mail: dict[str, float] = {}
    for mode in [s.strip() for s in args.servers.split(",") if s.strip()]:
        small = count(mode, mails[: args.small], senders[: args.small])
        large = count(mode, mails, senders)
        per_mail[mode] = (large - small) / (args.large - args.small)
        print(
            f"{mode:7} {args.small} mails: {small:,}; {args.large} mails: {large:,}; "
            f"per mail: {per_mail[mode] / 1e6:.3f} million instructions",
            flush=True,
        )
    if "bare" in per_mail and "intake" in per_mail:
        print(f"intake / bare aiosmtpd: {per_mail['intake'] / per_mail['bare']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
