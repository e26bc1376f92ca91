"""The real bounces of ../shared/corpus/bounces through the whole pipeline, per half of the folder
(bench/corpus_halves.py): every one is a recognised bounce (never a ticket), and at least 95% of the
failing addresses are read out, as a user observes it: a notification had been sent to each address,
the bounce came to `support@` with no envelope (pipe intake) and no VERP, and afterwards the address
is undeliverable (failed for good) or its notification says "delivery delayed" (a delay warning).

The rules were written looking at the tuning half; the checking half is the measure that they
generalise. `bench/bounce_rate.py` prints the same figures, and those of flufl.bounce alone.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bench.corpus_halves import halves
from gateway.config import settings_from_mapping
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.store import outbox
from gateway.store.db import unit_of_work
from gateway.store.models import utcnow
from tests.helpers import TEST_SECRET

pytestmark = pytest.mark.corpus

SUPPORT = "support@smilepass.example"
TARGET_ADDRESSES = 0.95


def bounce_folder(corpus_dir: Path) -> Path:
    folder = corpus_dir / "bounces"
    if not folder.is_dir():
        pytest.skip(f"no bounce folder in the corpus at {folder}")
    return folder


def expectations(folder: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    failed = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    delayed = json.loads((folder / "delayed.json").read_text(encoding="utf-8"))
    return failed, delayed


def test_the_halves_split_by_a_fixed_rule(corpus_dir: Path) -> None:
    paths = sorted(bounce_folder(corpus_dir).glob("*.eml"))
    tuning, checking = halves(reversed(paths))
    assert tuning == paths[0::2] and checking == paths[1::2]
    assert len(tuning) == 25 and len(checking) == 25


@pytest.mark.timeout(300)
@pytest.mark.parametrize("half", ["tuning", "checking"])
def test_every_bounce_is_recognised_and_its_failed_addresses_read(
    corpus_dir: Path, tmp_path: Path, half: str
) -> None:
    folder = bounce_folder(corpus_dir)
    failed, delayed = expectations(folder)
    tuning, checking = halves(folder.glob("*.eml"))
    paths = tuning if half == "tuning" else checking
    wanted_failed = {a.lower(): p.name for p in paths for a in failed.get(p.name, [])}
    wanted_delayed = {a.lower(): p.name for p in paths for a in delayed.get(p.name, [])}
    assert not set(wanted_failed) & set(wanted_delayed), "an address both failed and delayed in one half"

    settings = settings_from_mapping(
        {
            "gateway": {"addresses": [SUPPORT], "ticket_prefix": "SP", "secret": TEST_SECRET},
            "database": {"url": f"sqlite:///{tmp_path / 'bounces.db'}"},
            "storage": {"blob_dir": str(tmp_path / "blobs")},
        },
        environ={},
    )
    runtime = build_runtime(settings)
    try:
        # Given: a notification was sent to every address the bounces name, a day ago.
        sent_at = utcnow() - timedelta(days=1)
        rows: dict[str, int] = {}
        with unit_of_work(runtime.inbox.sessions) as session:
            for address in sorted({*wanted_failed, *wanted_delayed}):
                row = outbox.add(
                    session, ticket_id=None, template="ticket_created", to_address=address,
                    deadline=sent_at + timedelta(days=2), inbox_id=None, context={},
                )  # fmt: skip
                row.message_id = f"tg.SP-1.o{row.id}.corpus@smilepass.example"
                row.status, row.sent_at = outbox.SENT, sent_at
                rows[address] = row.id

        # When: the bounces come in to support@ by pipe (no envelope, no VERP address).
        envelope = Envelope(mail_from="", rcpt_tos=(SUPPORT,), source="pipe")
        ids = runtime.inbox.add_many([(path.read_bytes(), envelope) for path in paths])
        outcomes = {
            path.name: runtime.processor("corpus").process_ids([inbox_id])[0].outcome.value
            for path, inbox_id in zip(paths, ids, strict=True)
        }

        # Then: every one is a bounce ...
        not_bounces = {name: outcome for name, outcome in outcomes.items() if outcome != "bounce"}
        assert not not_bounces, f"{half} half: not recognised as bounces: {not_bounces}"
        # ... and the failing addresses were read: marked undeliverable, or their notification delayed.
        missed: list[str] = []
        with unit_of_work(runtime.inbox.sessions) as session:
            for address, name in wanted_failed.items():
                if outbox.undeliverable_reason(session, address) is None:
                    missed.append(f"{name}: {address} not marked undeliverable")
            for address, name in wanted_delayed.items():
                row = outbox.get(session, rows[address])
                assert row is not None
                if outbox.undeliverable_reason(session, address) is not None:
                    missed.append(f"{name}: delayed {address} marked undeliverable")
                elif not (row.last_error or "").startswith("delivery delayed"):
                    missed.append(f"{name}: delay to {address} not read")
        total = len(wanted_failed) + len(wanted_delayed)
        read = total - len(missed)
        print(f"\nbounces, {half} half: {len(paths)}/{len(paths)} recognised, {read}/{total} addresses read")
        print(Counter(outcomes.values()))
        assert read / total >= TARGET_ADDRESSES, f"{half} half: {read}/{total} read; missed: {missed}"
    finally:
        runtime.close()
