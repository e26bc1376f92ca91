"""`ticketgate tickets erase --requester ADDRESS --yes` (SPEC §12): after it, the person's address and
name are nowhere: not in `tickets show --json`, not in the database (the SQLite file's bytes, every
PostgreSQL table), and their files are gone from the blob store unless someone else sent the same."""

from __future__ import annotations

import hashlib
import io
import json
from email.message import EmailMessage
from pathlib import Path

from PIL import Image
from sqlalchemy import MetaData, create_engine, select

from tests.helpers import ticketgate, write_config

MARIA = "maria@customer.example"
LOG = b"2026-12-01 checkout error 500 for user 4711\n"


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), colour).save(out, "PNG")
    return out.getvalue()


SHARED, PRIVATE = png((200, 30, 30)), png((10, 140, 60))


def mail(sender: str, subject: str, body: str, files: list[tuple[bytes, str, str]]) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{hashlib.sha256(subject.encode()).hexdigest()[:16]}@example.net>"
    msg.set_content(body)
    for data, subtype, name in files:
        maintype = "image" if subtype == "png" else "text"
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def database_text(database_url: str, tmp_path: Path) -> str:
    """Everything the database holds, lower case: the file's bytes on SQLite (free pages and the
    write-ahead log too), every row of every table on PostgreSQL."""
    if database_url.startswith("sqlite"):
        files = [p for p in tmp_path.glob("ticketgate.db*") if p.is_file()]
        return b"".join(p.read_bytes() for p in files).decode("latin-1").lower()
    engine = create_engine(database_url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as connection:
            return "\n".join(
                repr(row) for table in meta.sorted_tables for row in connection.execute(select(table))
            ).lower()
    finally:
        engine.dispose()


def test_erase_removes_a_person_everywhere(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)

    def run(*args: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
        return ticketgate(*args, config=config, stdin=stdin)

    maria = mail(
        "Maria Lopez <maria@customer.example>",
        "Checkout fails with error 500",
        "The checkout fails.\n\nMaria Lopez\n",
        [(SHARED, "png", "shared.png"), (PRIVATE, "png", "mine.png"), (LOG, "plain", "checkout.log")],
    )
    lee = mail(
        "Lee Chan <lee@other.example>", "Checkout also fails", "Same here.\n", [(SHARED, "png", "a.png")]
    )
    for raw in (maria, lee):
        assert run("ingest", stdin=raw).returncode == 0
    reply = tmp_path / "reply.txt"
    reply.write_text("Hello Maria, thanks for the log, Ms Lopez.\n", encoding="utf-8")
    assert (
        run(
            "tickets", "update", "SP-1", "--reply-file", str(reply), "--as", "ana@smilepass.example"
        ).returncode
        == 0
    )
    before = run("tickets", "show", "SP-1", "--json").json()
    shots = {s["filename"]: s["sha256"] for s in before["screenshots"]}
    assert set(shots) == {"shared.png", "mine.png"}
    assert "maria" in database_text(database_url, tmp_path)

    refused = run("tickets", "erase", "--requester", MARIA)
    assert refused.returncode == 64 and "--yes" in refused.stderr
    assert run("tickets", "show", "SP-1", "--json").json()["requester"]["address"] == MARIA

    done = run("tickets", "erase", "--requester", "Maria@Customer.example", "--yes")
    assert done.returncode == 0, done.stderr
    assert "SP-1" in done.stdout

    shown = run("tickets", "show", "SP-1", "--json")
    after = shown.json()
    for trace in ("maria", "lopez"):
        assert trace not in shown.stdout.lower()
        assert trace not in run("tickets", "list", "--json").stdout.lower()
        assert trace not in database_text(database_url, tmp_path)
    assert after["requester"]["address"] == "erased@invalid"
    assert after["screenshots"] == [] and after["attachments"] == []
    assert [e["kind"] for e in after["events"]][-1] == "erased"
    assert "thanks for the log" in after["messages"][-1]["text"]  # staff's own words stay
    assert run("tickets", "export", "SP-1", str(tmp_path / "export")).returncode == 0

    blobs = tmp_path / "blobs"
    stored = {p.name for p in blobs.rglob("*") if p.is_file()}
    assert shots["shared.png"] in stored  # Lee sent the same picture: it stays
    assert shots["mine.png"] not in stored
    assert hashlib.sha256(LOG).hexdigest() not in stored
    lee_ticket = run("tickets", "show", "SP-2", "--json").json()
    assert lee_ticket["requester"]["address"] == "lee@other.example"
    assert [s["sha256"] for s in lee_ticket["screenshots"]] == [shots["shared.png"]]
    assert json.dumps(lee_ticket).lower().count("erased") == 0
