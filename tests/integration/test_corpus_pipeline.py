"""Every mail of the real-world corpus through the whole pipeline: each ends as a ticket, a
recognised bounce or auto-reply, or a quarantine entry with its reason — no exception escapes,
nothing hangs, nothing is left pending."""

from __future__ import annotations

from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.config import settings_from_mapping
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from tests.helpers import TEST_SECRET


def corpus_mails(corpus: Path) -> list[tuple[str, bytes]]:
    """(name, raw bytes) for every mail in the corpus; bodies-only sets are wrapped as mails."""
    found: list[tuple[str, bytes]] = []
    for pattern in ("talon/tests/fixtures/**/*.eml", "mail-gem/spec/fixtures/emails/**/*.eml"):
        found += [(str(p.relative_to(corpus)), p.read_bytes()) for p in sorted(corpus.glob(pattern))]
    for path in sorted(corpus.glob("reply-trimmer/emails/*.txt")):
        found.append((str(path.relative_to(corpus)), _wrap(path.stem, path.read_bytes(), "plain")))
    for path in sorted(corpus.glob("talon/tests/fixtures/html_replies/*.html")):
        found.append((str(path.relative_to(corpus)), _wrap(path.stem, path.read_bytes(), "html")))
    return found


def _wrap(name: str, body: bytes, subtype: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Corpus Sender <sender@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = f"Re: corpus {name}"
    msg["Message-ID"] = f"<{name}@corpus.example>"
    msg.set_content(body.decode("utf-8", "replace"), subtype=subtype)
    return msg.as_bytes()


@pytest.mark.timeout(600)
def test_every_corpus_mail_gets_exactly_one_outcome(corpus_dir: Path, tmp_path: Path) -> None:
    mails = corpus_mails(corpus_dir)
    assert len(mails) > 150, "the corpus looks incomplete"
    settings = settings_from_mapping(
        {
            "gateway": {
                "addresses": ["support@smilepass.example"],
                "ticket_prefix": "SP",
                "secret": TEST_SECRET,
            },
            "database": {"url": f"sqlite:///{tmp_path / 'corpus.db'}"},
            "storage": {"blob_dir": str(tmp_path / "blobs")},
            # The HTML fixtures all come from one made-up sender; the sweep is about parsing, not floods.
            "limits": {"new_tickets_per_sender_per_hour": 0},
        },
        environ={},
    )
    runtime = build_runtime(settings)
    envelope = Envelope(mail_from="", rcpt_tos=("support@smilepass.example",), source="pipe")
    ids = runtime.inbox.add_many([(raw, envelope) for _name, raw in mails])
    names = dict(zip(ids, (name for name, _ in mails), strict=True))
    processor = runtime.processor("corpus")

    # No timing is asserted (speed lives in bench/bench_pipeline.py); the test timeout catches a hang.
    outcomes: dict[int, str] = {}
    for inbox_id in ids:
        [result] = processor.process_ids([inbox_id])
        outcomes[inbox_id] = result.outcome.value

    counts = Counter(outcomes.values())
    print(f"\ncorpus sweep: {len(mails)} mails: {dict(counts)}")
    allowed = {"ticket", "reply", "bounce", "auto_reply", "duplicate", "abuse_report", "quarantine"}
    assert set(counts) <= allowed

    states = Counter(item.state for item in runtime.inbox.summaries())
    assert states["pending"] == 0 and states["processing"] == 0, states
    for item in runtime.inbox.summaries(state="quarantined"):
        assert item.error, f"quarantined without a reason: {names[item.id]}"
    quarantined = sorted(names[i] for i, o in outcomes.items() if o == "quarantine")
    assert quarantined == [], f"these corpus mails could not be processed: {quarantined}"

    bounces = sorted(names[i] for i, o in outcomes.items() if o == "bounce")
    assert "mail-gem/spec/fixtures/emails/multipart_report_emails/report_530.eml" in bounces

    with unit_of_work(runtime.inbox.sessions) as session:
        queue = ticket_store.queue(session)
        assert len(queue) == counts["ticket"]  # a reply joins a ticket, it opens none
        for ticket in queue:
            assert ticket.title.strip(), f"ticket {ticket.id} has an empty title"
            assert len(ticket.title) <= 200
            assert len(ticket.description) <= 500
    runtime.close()
