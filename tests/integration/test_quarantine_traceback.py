"""A stage that raises something nobody expected: the mail is quarantined with the traceback, and
`ticketgate quarantine show` prints it; `quarantine retry` runs the mail again (through the real
stages) and it becomes a ticket. On SQLite and PostgreSQL.

No real input makes a shipped stage raise today (the property tests hunt for one and fail when they
find it), so the failing stage is a careless one written for this test and run through a processor
built with its own stage table — the real exception boundary, the real inbox, the real CLI."""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_settings
from gateway.domain import Envelope
from gateway.pipeline.processor import STAGES, MailRun, Outcome, Processor
from gateway.pipeline.stage_values import P
from gateway.runtime import build_runtime
from tests.helpers import make_mail, ticketgate, write_config


def seat_count_stage(mail: P, run: MailRun) -> P:
    """Reads a header as a number without asking whether it is one: raises ValueError on "twelve"."""
    seats = mail.mail.header("X-Seats")
    if seats is not None and int(seats) > 1000:
        raise NotImplementedError("large accounts")  # not reached: the mail says "twelve"
    return mail


def with_seat_count_stage() -> tuple:
    parse_index = [name for name, _ in STAGES].index("parse_mail")
    return (*STAGES[: parse_index + 1], ("seat_count", seat_count_stage), *STAGES[parse_index + 1 :])


def test_an_unexpected_stage_error_is_quarantined_with_its_traceback_and_retried(
    tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    runtime = build_runtime(load_settings(config, environ={}))
    try:
        raw = make_mail("Seats for next year", headers={"X-Seats": "twelve"})
        envelope = Envelope(
            mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
        )
        inbox_id = runtime.inbox.add(raw, envelope)
        processor = Processor(runtime.deps, worker="test:worker", stages=with_seat_count_stage())
        [result] = processor.process_ids([inbox_id])
    finally:
        runtime.close()

    assert result.outcome is Outcome.QUARANTINE
    listed = ticketgate("quarantine", "list", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    [item] = listed.json()
    assert item["id"] == inbox_id
    # The reason names the stage that raised.
    assert item["reason"] == "stage seat_count: ValueError: invalid literal for int() with base 10: 'twelve'"

    shown = ticketgate("quarantine", "show", str(inbox_id), config=config)
    assert shown.returncode == 0, shown.stderr
    assert f"reason: {item['reason']}" in shown.stdout
    assert "Traceback (most recent call last):" in shown.stdout
    assert "in seat_count_stage" in shown.stdout  # the traceback points at the stage that raised
    assert "X-Seats: twelve" in shown.stdout  # and the original follows

    retried = ticketgate("quarantine", "retry", str(inbox_id), config=config)
    assert retried.returncode == 0, retried.stderr
    assert f"inbox {inbox_id}: ticket SP-1" in retried.stdout
    assert ticketgate("quarantine", "list", "--json", config=config).json() == []
    tickets = ticketgate("tickets", "list", "--json", config=config).json()
    assert [t["title"] for t in tickets] == ["Seats for next year"]
