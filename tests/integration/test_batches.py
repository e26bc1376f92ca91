"""Batches on SQLite: a batch stops taking mails once its transaction has held the write lock
`BATCH_SECONDS`, so the mails after go into a transaction of their own and intake's writer gets
the lock in between (docs/development/index.md, "Batches").

A stage written for this test takes longer than BATCH_SECONDS on each mail and looks, from a
connection of its own (SQLite in WAL mode shows it only what is committed), at the inbox rows of
the mails processed before it; a second thread stores a mail the way intake does meanwhile. What
is asserted is the order of things, never a duration."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.pipeline import processor as processor_module
from gateway.pipeline.processor import STAGES, MailRun, Outcome, Processor
from gateway.pipeline.stage_values import P
from tests.helpers import make_mail, write_config

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
        parse_index = [name for name, _ in STAGES].index("parse_mail")
        stages = (*STAGES[: parse_index + 1], ("slow", slow_stage), *STAGES[parse_index + 1 :])
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


def _subject(raw: bytes) -> str:
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("Subject: "):
            return line.removeprefix("Subject: ")
    return ""
