"""Batches on SQLite: a batch stops taking mails as soon as intake's group commit waits for the
write lock, or once its transaction has held it `BATCH_SECONDS`, so the mails after go into a
transaction of their own and intake's writer gets the lock in between (docs/development/index.md,
"Batches"; docs/performance/throughput.md).

A stage written for this test takes longer than BATCH_SECONDS on each mail and looks, from a
connection of its own (SQLite in WAL mode shows it only what is committed), at the inbox rows of
the mails processed before it; a second thread stores a mail the way intake does meanwhile. What
is asserted is the order of things, never a duration."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.pipeline import processor as processor_module
from gateway.pipeline.processor import STAGES, MailRun, Outcome, Processor
from gateway.pipeline.stage_values import P, Stage
from gateway.store.db import intake_first, intake_waiting
from tests.helpers import PROJECT_ROOT, make_mail, write_config

ENVELOPE = Envelope(
    mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
)


def test_a_batch_that_holds_the_sqlite_write_lock_too_long_commits_and_lets_intake_in(tmp_path: Path) -> None:
    database = tmp_path / "ticketgate.db"
    config = write_config(tmp_path, f"sqlite:///{database}")
    runtime = build_runtime(load_settings(config, environ={}))
    seen_committed: dict[str, set[str]] = {}  # subject -> subjects already done when its stage ran
    intake_stored = threading.Event()
    stored_before: list[str] = []  # subjects whose stage ran after intake's mail was committed

    def slow_stage(mail: P, run: MailRun) -> P:
        time.sleep(processor_module.BATCH_SECONDS * 1.5)
        with sqlite3.connect(database) as look:
            rows = look.execute("SELECT raw FROM inbox WHERE state = 'done'").fetchall()
        seen_committed[mail.mail.subject] = {_subject(raw) for (raw,) in rows}
        if intake_stored.is_set():
            stored_before.append(mail.mail.subject)
        if mail.mail.subject == "Mail 1":
            intake.start()  # from now on intake's writer waits for the lock this batch holds
        return mail

    def store_like_intake() -> None:
        runtime.inbox.add_many([(make_mail("Arrived meanwhile"), ENVELOPE)])
        intake_stored.set()

    intake = threading.Thread(target=store_like_intake)
    subjects = [f"Mail {n}" for n in range(1, 5)]
    try:
        ids = [runtime.inbox.add(make_mail(subject), ENVELOPE) for subject in subjects]
        stages = after_parse_mail("slow", slow_stage)
        results = Processor(runtime.deps, worker="test:worker", stages=stages).process_ids(ids)
        intake.join(timeout=30)
    finally:
        runtime.close()

    assert [r.outcome for r in results] == [Outcome.TICKET] * 4
    # Each mail took longer than BATCH_SECONDS, so each had a transaction of its own: the mails
    # before it were committed (visible from another connection) when its stages ran.
    assert seen_committed == {subject: set(subjects[:n]) for n, subject in enumerate(subjects)}
    # Intake's mail was committed between two batches, not after the last one.
    assert intake_stored.is_set()
    assert stored_before, "intake's writer got the lock only after the whole claim was processed"


def after_parse_mail(name: str, stage: Stage) -> tuple[tuple[str, Stage], ...]:
    """The processor's stages with `stage` run right after parse_mail (a batch's mails are then
    parsed, so the test's stage sees which one it is)."""
    parse_index = [each for each, _ in STAGES].index("parse_mail")
    return (*STAGES[: parse_index + 1], (name, stage), *STAGES[parse_index + 1 :])


def _subject(raw: bytes) -> str:
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("Subject: "):
            return line.removeprefix("Subject: ")
    return ""


# Intake's group commit in a process of its own, as `serve` is to a worker process: it stores one
# mail the way the daemon's writer does (gateway/daemon/main.py, `_WakingInbox`).
_INTAKE_IN_ANOTHER_PROCESS = """
import sys
from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.store.db import intake_first
from tests.helpers import make_mail
runtime = build_runtime(load_settings(sys.argv[1], environ={}))
envelope = Envelope(
    mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
)
print("ready", flush=True)
sys.stdin.readline()
with intake_first():
    runtime.inbox.add_taken(lambda: [(make_mail("Arrived meanwhile"), envelope)])
runtime.close()
print("stored", flush=True)
"""


@pytest.mark.parametrize("intake_in", ["thread", "process"])
def test_a_batch_ends_as_soon_as_intake_waits_for_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, intake_in: str
) -> None:
    """The batch's time bound is put out of reach: what ends the batch after its first mail is
    intake waiting, and intake's mail is committed before the next batch begins."""
    monkeypatch.setattr(processor_module, "BATCH_SECONDS", 3600.0)
    database = tmp_path / "ticketgate.db"
    config = write_config(tmp_path, f"sqlite:///{database}")
    runtime = build_runtime(load_settings(config, environ={}))
    seen: dict[str, set[str]] = {}  # subject -> subjects stored (any state) when its stage ran
    done_before: dict[str, set[str]] = {}  # subject -> subjects already done when its stage ran
    waited: list[bool] = []
    finish_intake: list[Callable[[], None]] = []

    def watching_stage(mail: P, run: MailRun) -> P:
        run.session.connection()  # the batch's BEGIN IMMEDIATE (if not yet): it holds the write lock
        with sqlite3.connect(database) as look:
            rows = look.execute("SELECT raw, state FROM inbox").fetchall()
        seen[mail.mail.subject] = {_subject(raw) for raw, _ in rows}
        done_before[mail.mail.subject] = {_subject(raw) for raw, state in rows if state == "done"}
        if mail.mail.subject == "Mail 1":
            finish_intake.append(start_intake())
            deadline = time.monotonic() + 20
            while not intake_waiting(runtime.engine) and time.monotonic() < deadline:
                time.sleep(0.001)
            waited.append(intake_waiting(runtime.engine))
        return mail

    def start_intake() -> Callable[[], None]:
        if intake_in == "thread":

            def store() -> None:
                with intake_first():
                    runtime.inbox.add_taken(lambda: [(make_mail("Arrived meanwhile"), ENVELOPE)])

            thread = threading.Thread(target=store)
            thread.start()
            return lambda: thread.join(timeout=30)
        assert process is not None and process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()

        def wait_for_it() -> None:
            out, _ = process.communicate(timeout=30)
            assert out.strip() == "stored"

        return wait_for_it

    process = None
    if intake_in == "process":  # started and ready before the batch holds the lock it needs to start
        process = subprocess.Popen(
            [sys.executable, "-c", _INTAKE_IN_ANOTHER_PROCESS, str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    subjects = [f"Mail {n}" for n in range(1, 5)]
    try:
        ids = [runtime.inbox.add(make_mail(subject), ENVELOPE) for subject in subjects]
        stages = after_parse_mail("watch", watching_stage)
        results = Processor(runtime.deps, worker="test:worker", stages=stages).process_ids(ids)
        for finish in finish_intake:
            finish()
    finally:
        runtime.close()

    assert waited == [True], "intake's writer never said it was waiting for the write lock"
    assert [r.outcome for r in results] == [Outcome.TICKET] * 4
    # Mail 1's batch ended after it, because intake waited: Mail 1 was committed, and intake's mail
    # with it stored, before Mail 2's stage ran; Mails 2-4 (nobody waiting) shared one batch.
    assert "Arrived meanwhile" not in seen["Mail 1"]
    assert "Arrived meanwhile" in seen["Mail 2"]
    assert done_before == {
        "Mail 1": set(),
        "Mail 2": {"Mail 1"},
        "Mail 3": {"Mail 1"},
        "Mail 4": {"Mail 1"},
    }
