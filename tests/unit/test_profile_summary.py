"""bench/profile_summary.py: a py-spy raw profile summed per thread and per function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import PROJECT_ROOT

THREAD = "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982)"
PROCESSOR = f"{THREAD};Processor.run (gateway/pipeline/processor.py:81)"
RAW = "\n".join(
    [
        f"{PROCESSOR};parse_mail (gateway/mail/parse.py:484) 30",
        f"{PROCESSOR};unit_of_work (gateway/store/db.py:218);do_commit (sqlalchemy/engine/default.py:700) 50",
        f"{PROCESSOR};Event.wait (threading.py:622) 500",
        "<module> (gateway/cli/main.py:1);run_daemon (gateway/daemon/main.py:60);"
        "SMTP._handle_client (aiosmtpd/smtp.py:700) 20",
    ]
)


def test_shares_per_thread_and_per_function_leave_idle_waits_out(tmp_path: Path) -> None:
    profile = tmp_path / "serve.txt"
    profile.write_text(RAW)
    out = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "profile_summary.py"), str(profile), "--top", "5"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "serve.txt: 100 busy samples" in out  # the 500 samples waiting in Event.wait are idle
    assert "   80.0%  Processor.run" in out
    assert "   20.0%  run_daemon" in out
    assert "Processor.run: largest inclusive shares" in out
    assert "   62.5%  unit_of_work (gateway/store/db.py)" in out  # 50 of the thread's 80
    assert "   37.5%  parse_mail (gateway/mail/parse.py)" in out
    assert "   62.5%  do_commit (sqlalchemy/engine/default.py)" in out.split("largest self shares")[1]
