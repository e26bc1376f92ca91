"""`explain` tells what processing does (SPEC §14): every mail of the visible corpus (talon, mail-gem,
rt, bounces, crisp, reply-trimmer, TNEF) is explained and then processed for real, one after the
other on one store (so each explain meets the database processing meets), and the two must agree
on the outcome, the ticket, its title, priority and category, the requester and the notifications
queued; and explain must leave nothing behind: no inbox row, ticket, notification or blob."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.cli.explain import dry_deps
from gateway.config import Settings, settings_from_mapping
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.pipeline.explain import Explanation, explain_file
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from gateway.store.models import OutboxRow
from tests.helpers import TEST_SECRET
from tests.integration.test_corpus_pipeline import corpus_mails

SUPPORT = "support@smilepass.example"
ENVELOPE = Envelope(mail_from="", rcpt_tos=(SUPPORT,), source="pipe")


def every_corpus_mail(corpus: Path) -> list[tuple[str, bytes]]:
    """corpus_mails (talon, mail-gem, reply-trimmer) and the rest of the visible corpus."""
    found = corpus_mails(corpus)
    for pattern in ("rt/t/data/emails/*", "bounces/*.eml"):
        found += [
            (str(p.relative_to(corpus)), p.read_bytes()) for p in sorted(corpus.glob(pattern)) if p.is_file()
        ]
    for path in sorted(corpus.glob("crisp/emails/*.txt")):
        found.append((str(path.relative_to(corpus)), _wrap(path.stem, path.read_bytes())))
    for path in sorted(corpus.glob("tnef/*.tnef")):
        found.append((str(path.relative_to(corpus)), _winmail(path.stem, path.read_bytes())))
    return found


def _wrap(name: str, body: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Crisp Sender <crisp@customer.example>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Re: crisp {name}"
    msg["Message-ID"] = f"<crisp-{name}@corpus.example>"
    msg.set_content(body.decode("utf-8", "replace"))
    return msg.as_bytes()


def _winmail(name: str, payload: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Outlook User <outlook@customer.example>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"[bug] TNEF {name}"
    msg["Message-ID"] = f"<tnef-{name}@corpus.example>"
    msg.set_content("See the attachment.")
    msg.add_attachment(payload, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    return msg.as_bytes()


def corpus_settings(tmp_path: Path, name: str) -> Settings:
    return settings_from_mapping(
        {
            "gateway": {"addresses": [SUPPORT], "ticket_prefix": "SP", "secret": TEST_SECRET},
            "database": {"url": f"sqlite:///{tmp_path / f'{name}.db'}"},
            "storage": {"blob_dir": str(tmp_path / f"{name}-blobs")},
            "staff": {"addresses": ["ana@smilepass.example"], "triage": "triage@smilepass.example"},
            "limits": {"new_tickets_per_sender_per_hour": 0},
            "rules": [
                {"name": "invoices", "subject": "invoice|rechnung", "category": "Billing & Payments"},
                {"name": "lists", "header": "List-Id: .", "acknowledge": False},
                {"name": "tnef", "subject": "TNEF", "priority": "High", "assign": "ana@smilepass.example"},
            ],
        },
        environ={},
    )


def observed(runtime: Runtime, inbox_id: int, outcome: str, ticket_id: int | None) -> dict[str, Any]:
    """What real processing left for one mail, in the terms of `explain --json`."""
    with unit_of_work(runtime.inbox.sessions) as session:
        ticket = ticket_store.load_ticket(session, ticket_id) if ticket_id is not None else None
        queued = session.execute(
            select(OutboxRow.template, OutboxRow.to_address)
            .where(OutboxRow.inbox_id == inbox_id)
            .order_by(OutboxRow.id)
        ).all()
        return {
            "outcome": outcome,
            "ticket": ticket_id,
            "title": ticket.title if ticket else None,
            "priority": ticket.priority if ticket else None,
            "category": ticket.category if ticket else None,
            "requester": ticket.requester_address if ticket and outcome == "ticket" else None,
            "notifications": [tuple(row) for row in queued],
        }


def told(explanation: Explanation) -> dict[str, Any]:
    return {
        "outcome": explanation.outcome,
        "ticket": explanation.ticket_id,
        "title": explanation.title,
        "priority": explanation.priority,
        "category": explanation.category,
        "requester": (
            explanation.requester.address.address
            if explanation.requester is not None and explanation.outcome == "ticket"
            else None
        ),
        "notifications": [(q.template, q.to) for q in explanation.notifications],
    }


@pytest.mark.timeout(600)
def test_explain_agrees_with_processing_on_every_corpus_mail_and_leaves_nothing_behind(
    corpus_dir: Path, tmp_path: Path
) -> None:
    mails = every_corpus_mail(corpus_dir)
    assert len(mails) > 250, "the corpus looks incomplete"
    runtime = build_runtime(corpus_settings(tmp_path, "corpus"))
    deps = dry_deps(runtime)
    processor = runtime.processor("corpus")
    blob_dir = tmp_path / "corpus-blobs"
    disagreements: list[str] = []
    outcomes: list[str] = []
    queued = 0
    try:
        for index, (name, raw) in enumerate(mails, start=1):
            blobs_before = _files(blob_dir)
            explanation = explain_file(deps, raw, ENVELOPE)
            if _files(blob_dir) != blobs_before:
                disagreements.append(f"{name}: explain wrote blobs")
            [inbox_id] = runtime.inbox.add_many([(raw, ENVELOPE)])
            # SQLite gives the next row the id after the largest: explain's rows are gone.
            assert inbox_id == index, f"{name}: explain left an inbox row"
            [result] = processor.process_ids([inbox_id])
            real = observed(runtime, inbox_id, result.outcome.value, result.ticket_id)
            outcomes.append(real["outcome"])
            queued += len(real["notifications"])
            if told(explanation) != real:
                disagreements.append(f"{name}: explain {told(explanation)} != processing {real}")
        with unit_of_work(runtime.inbox.sessions) as session:
            # Nothing explain queued or opened is left: only what processing did.
            assert session.scalar(select(func.count()).select_from(OutboxRow)) == queued
            assert len(ticket_store.queue(session)) == outcomes.count("ticket")
    finally:
        runtime.close()
    assert disagreements == []
    assert {"ticket", "reply", "bounce"} <= set(outcomes)
    assert _files(blob_dir), "no corpus mail had a screenshot or attachment: the blob check checked nothing"


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()
