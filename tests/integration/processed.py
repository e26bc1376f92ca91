"""Mails through the real pipeline on a real store, and what `tickets show --json` then says.

For tests about how a kind of mail reads (TNEF, signed, encrypted): the processor runs in-process,
on SQLite or PostgreSQL, exactly as `ticketgate ingest` runs it, without a daemon to start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import settings_from_mapping
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.present import ticket_json
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from tests.helpers import TEST_SECRET

SUPPORT = "support@smilepass.example"


@dataclass(frozen=True)
class Processed:
    outcome: str  # "ticket", "reply", ...
    ticket: dict[str, Any] | None  # the ticket it opened or joined, as `tickets show --json` gives it
    stored: bytes  # the original as the inbox keeps it (`tickets export` writes it as the .eml)


def process(database_url: str, tmp_path: Path, raws: list[bytes]) -> list[Processed]:
    """Each mail's outcome and, where it opened or joined a ticket, that ticket as `tickets show --json`."""
    settings = settings_from_mapping(
        {
            "gateway": {"addresses": [SUPPORT], "ticket_prefix": "SP", "secret": TEST_SECRET},
            "database": {"url": database_url},
            "storage": {"blob_dir": str(tmp_path / "blobs")},
            "limits": {"new_tickets_per_sender_per_hour": 0},
        },
        environ={},
    )
    runtime = build_runtime(settings)
    envelope = Envelope(mail_from="", rcpt_tos=(SUPPORT,), source="pipe")
    ids = runtime.inbox.add_many([(raw, envelope) for raw in raws])
    processor = runtime.processor("test")
    found: list[Processed] = []
    for inbox_id in ids:
        [result] = processor.process_ids([inbox_id])
        ticket = None
        if result.ticket_id is not None:
            with unit_of_work(runtime.inbox.sessions) as session:
                loaded = ticket_store.load_ticket(session, result.ticket_id)
                assert loaded is not None
                ticket = ticket_json(loaded, "SP")
        kept = runtime.inbox.get(inbox_id)
        assert kept is not None
        found.append(Processed(result.outcome.value, ticket, kept[1]))
    runtime.engine.dispose()
    return found
