"""`ticketgate explain FILE` and `ticketgate inbox explain ID` with the real CLI, on SQLite and
PostgreSQL (SPEC §14): the decision of every stage and why, the `--json` shape, and that nothing is
written or sent: no inbox row, ticket, notification or screenshot stays, and no ticket number is
used up (the next real ticket gets the number explain showed)."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select, text

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.pipeline.processor import STAGES
from gateway.store.models import Blob, InboxItem, OutboxRow, Ticket
from tests.helpers import make_mail, ticketgate, write_config

RULES = """
[[rules]]
name = "vendor-news"
header = "List-Id: news\\\\.vendor\\\\.example"
drop = true

[[rules]]
name = "invoices"
subject = "invoice"
category = "Billing & Payments"
"""


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = write_config(tmp_path, database_url, RULES)
    build_runtime(load_settings(path)).close()  # the schema, so the counts below have tables
    return path


def _screenshot_mail() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 400), (200, 30, 30)).save(out, "PNG")
    msg = EmailMessage()
    msg["From"] = "Maria Lopez <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = "Re: [urgent] Invoice page shows an error"
    msg["Message-ID"] = "<shot.1@customer.example>"
    msg.set_content("The invoice page fails, see the screenshot.\n\n-- \nMaria\n")
    msg.add_attachment(out.getvalue(), maintype="image", subtype="png", filename="error.png")
    return msg.as_bytes()


def counts(database_url: str, blob_dir: Path) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            found = {
                model.__tablename__: conn.scalar(select(func.count()).select_from(model))
                for model in (InboxItem, Ticket, OutboxRow, Blob)
            }
            if engine.dialect.name == "postgresql":  # the ticket number the next ticket would get
                found["tickets_seq"] = conn.scalar(
                    text("SELECT last_value + is_called::int FROM tickets_id_seq")
                )
    finally:
        engine.dispose()
    found["blob files"] = sum(1 for p in blob_dir.rglob("*") if p.is_file()) if blob_dir.is_dir() else 0
    return found


def test_explain_shows_each_stage_and_writes_nothing(config: Path, tmp_path: Path, database_url: str) -> None:
    mail = tmp_path / "shot.eml"
    mail.write_bytes(_screenshot_mail())
    before = counts(database_url, tmp_path / "blobs")

    run = ticketgate("explain", str(mail), "--json", config=config)

    assert run.returncode == 0, run.stderr
    told = run.json()
    assert counts(database_url, tmp_path / "blobs") == before  # nothing written
    assert not (tmp_path / "outgoing").exists() or not any((tmp_path / "outgoing").iterdir())  # nothing sent
    assert told["outcome"] == "ticket" and told["ticket"] == "SP-1"
    assert told["requester"] == {"address": "maria@customer.example", "name": "Maria Lopez", "source": "From"}
    assert (told["title"], told["priority"], told["category"]) == (
        "Invoice page shows an error",
        "Urgent",
        "Billing & Payments",
    )
    assert told["rules"] == ["invoices"]
    assert [s["stage"] for s in told["stages"]] == [name for name, _ in STAGES] + ["notifications"]
    stages = {s["stage"]: s for s in told["stages"]}
    assert stages["open_ticket"]["decision"] == "ticket"
    assert "removed prefix 'Re:', tag '[urgent]'" in stages["open_ticket"]["reason"]
    assert "Urgent (subject tag)" in stages["open_ticket"]["reason"]
    assert "Billing & Payments (rule 'invoices')" in stages["open_ticket"]["reason"]
    assert stages["apply_rules"]["reason"] == (
        "invoices: subject ~ 'invoice' matched 'Invoice'; category Billing & Payments by rule 'invoices'"
    )
    assert stages["thread_mail"]["decision"] == "opens a new ticket"
    assert "from the From header" in stages["parse_mail"]["reason"]
    assert told["text"] == "The invoice page fails, see the screenshot."
    assert told["trimmed"].strip() == "--\nMaria".replace("--", "-- ").strip()
    assert sorted((n["template"], n["to"]) for n in told["notifications"]) == [
        ("staff_new_ticket", "triage@smilepass.example"),
        ("ticket_created", "maria@customer.example"),
    ]

    # The ticket explain showed is the ticket processing makes: its number was not used up.
    assert ticketgate("ingest", str(mail), config=config).returncode == 0
    [made] = ticketgate("tickets", "list", "--json", config=config).json()
    assert (made["ref"], made["title"], made["priority"], made["category"]) == (
        "SP-1",
        told["title"],
        told["priority"],
        told["category"],
    )

    # A reply to it joins SP-1; explained in words this time.
    reply = tmp_path / "reply.eml"
    reply.write_bytes(
        make_mail(
            "Re: [SP-1] Invoice page shows an error",
            "Still broken.\n\nOn Monday Support wrote:\n> We are on it.\n",
            headers={"In-Reply-To": "<shot.1@customer.example>"},
        )
    )
    words = ticketgate("explain", str(reply), config=config)
    assert words.returncode == 0, words.stderr
    assert words.stdout.startswith("outcome: reply SP-1\n")
    assert "  thread_mail: joins SP-1\n" in words.stdout
    assert "In-Reply-To/References naming a message of the ticket" in words.stdout
    assert "text:\n  | Still broken.\n" in words.stdout
    assert "  | > We are on it." in words.stdout  # under "trimmed:"
    assert "  requester_reply to triage@smilepass.example" in words.stdout


def test_inbox_explain_tells_why_a_stored_mail_got_its_outcome(config: Path, tmp_path: Path) -> None:
    listed = tmp_path / "news.eml"
    listed.write_bytes(
        make_mail("Vendor weekly", "News.", sender="news@vendor.example",
                  headers={"List-Id": "Vendor News <news.vendor.example>"})
    )  # fmt: skip
    assert ticketgate("ingest", str(listed), config=config).returncode == 0
    [row] = ticketgate("inbox", "list", "--json", config=config).json()
    assert row["outcome"] == "dropped"

    run = ticketgate("inbox", "explain", str(row["id"]), "--json", config=config)

    assert run.returncode == 0, run.stderr
    told = run.json()
    assert (told["outcome"], told["ticket"], told["rules"]) == ("dropped", None, ["vendor-news"])
    assert told["stages"][0]["stage"] == "inbox" and "now dropped" in told["stages"][0]["decision"]
    assert [s["stage"] for s in told["stages"]][-2:] == ["apply_rules", "notifications"]
    assert told["stages"][-2]["decision"] == "dropped"
    assert told["notifications"] == []
    # Still dropped: explain changed nothing.
    assert ticketgate("inbox", "list", "--json", config=config).json() == [row]

    missing = ticketgate("inbox", "explain", "999", config=config)
    assert (missing.returncode, missing.stderr) == (1, "ticketgate: no inbox item 999\n")


def test_explain_on_a_file_that_is_not_a_mail_exits_65_with_one_line(config: Path, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"just some notes\nnothing like a mail\n")
    run = ticketgate("explain", str(junk), config=config)
    assert run.returncode == 65
    assert run.stdout == ""
    assert run.stderr == f"ticketgate: {junk}: not a mail: no header section in its first lines\n"
    gone = ticketgate("explain", str(tmp_path / "absent.eml"), config=config)
    assert gone.returncode == 66 and gone.stderr.count("\n") == 1 and "cannot read" in gone.stderr
