"""What queueing one notification costs, part by part: rendering the templates (Jinja2), building
the MIME message, and inserting the outbox row on SQLite — the three things
`NotificationPlanner._queue` does inside the processing transaction.

Run from the project root: ``.venv/bin/python bench/notification_cost.py [--n 2000]``. It renders
the built-in `ticket_created` template with a context like the planner's, builds the message both
the direct way (`build_message`) and through the compat32 MIME classes (`_mime_message`), and
inserts rows like `outbox.add` into a fresh SQLite file in one transaction. No figure here is
asserted anywhere: this is a measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the project importable without installing it
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_intake import machine, write_config  # noqa: E402

from gateway.config import load_settings  # noqa: E402
from gateway.daemon.runtime import build_runtime  # noqa: E402
from gateway.domain import REPLY_MARKER, Address  # noqa: E402
from gateway.notify.message import (  # noqa: E402
    AUTO_REPLIED,
    Headers,
    _mime_message,
    build_message,
    new_message_id,
    subject_for,
)
from gateway.notify.render import Renderer  # noqa: E402
from gateway.store import outbox  # noqa: E402
from gateway.store.db import make_session_factory, unit_of_work  # noqa: E402
from gateway.store.models import utcnow  # noqa: E402

CONTEXT = {
    "marker": REPLY_MARKER,
    "desk": "SmilePass Support",
    "ref": "SP-42",
    "title": "Payment plan ADD button does nothing",
    "status": "new",
    "priority": "medium",
    "category": "Technical Issues & Bugs",
    "tier": "Standard",
    "requester_name": "Maria López",
    "requester_address": "maria@customer.example",
    "helps": ["steps", "device"],
    "device": "",
    "has_screenshot": False,
}
HEADERS = Headers(
    sender=Address("support@smilepass.example", "SmilePass Support"),
    to=Address("maria@customer.example", "Maria López"),
    reply_to="support+SP-42.abcdefghijklmnop@smilepass.example",
    subject=subject_for("SP-42", "Payment plan ADD button does nothing"),
    message_id=new_message_id(ref="SP-42", outbox_id=17, domain="smilepass.example"),
    in_reply_to="original@customer.example",
    references=["original@customer.example", "tg.SP-42@smilepass.example"],
    auto_submitted=AUTO_REPLIED,
)


def per_call_ms(n: int, call: Callable[[], object]) -> float:
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) * 1000 / n


def insert_ms(n: int) -> float:
    """CPU per `outbox.add` on a fresh SQLite file, n rows in one transaction (commit excluded)."""
    with tempfile.TemporaryDirectory(prefix="tg-notify-cost-") as workdir:
        config = write_config(Path(workdir), f"sqlite:///{workdir}/t.db", port=2525, workers=1)
        runtime = build_runtime(load_settings(config))
        try:
            with unit_of_work(make_session_factory(runtime.engine)) as session:
                deadline = utcnow() + timedelta(hours=24)

                def add() -> object:
                    return outbox.add(
                        session, ticket_id=None, template="ticket_created", to_address="m@c.example",
                        deadline=deadline, inbox_id=None, context=CONTEXT,
                    )  # fmt: skip

                return per_call_ms(n, add)
        finally:
            runtime.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="notifications per measurement (default 2000)")
    args = parser.parse_args(argv)
    renderer = Renderer()
    rendered = renderer.render("ticket_created", CONTEXT)
    print(f"machine: {machine()}")
    rows = [
        ("render ticket_created (Jinja2, both parts)", lambda: renderer.render("ticket_created", CONTEXT)),
        ("build, MIME classes (before)", lambda: _mime_message(HEADERS, rendered, ())),
        ("build, direct (build_message)", lambda: build_message(HEADERS, rendered)),
    ]
    for label, call in rows:
        print(f"{label + ':':<45} {per_call_ms(args.n, call):.3f} ms")
    print(f"{'outbox row insert (SQLite, no commit):':<45} {insert_ms(args.n):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
