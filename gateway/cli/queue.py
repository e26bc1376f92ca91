"""What the commands of gateway/cli/main.py's first table do: serve, ingest, tickets show and
screenshot, quarantine, outbox, db upgrade, check-config (gateway/cli/commands.py names them;
each is imported only when chosen)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.settings import settings_for
from gateway.daemon.runtime import Runtime, build_runtime, open_runtime
from gateway.domain import Envelope
from gateway.errors import TransientError
from gateway.present import (
    iso,
    parse_ref,
    print_json,
    ticket_json,
    ticket_ref,
    ticket_text,
)
from gateway.store import outbox as outbox_store
from gateway.store import tickets as ticket_store
from gateway.store.blobs import BlobUnreadable, blob_problem
from gateway.store.db import make_engine, unit_of_work
from gateway.store.inbox import QUARANTINED
from gateway.store.models import Ticket, utcnow
from gateway.store.schema import current_revisions, upgrade

if TYPE_CHECKING:  # only the store imports SQLAlchemy; the CLI just passes its session along
    from sqlalchemy.orm import Session

EX_USAGE = 64
EX_NOTFOUND = 1


def serve(args: argparse.Namespace) -> int:
    from gateway.cli import control_client, main
    from gateway.daemon.main import run_daemon  # the daemon pulls in aiosmtpd; other commands need not

    return run_daemon(settings_for(args), command_line=(main.run, control_client.is_read_only))


def ingest(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    # Imported here: `tickets show` and the other commands of this module need neither (~0.8x
    # `python -c pass` of imports they would pay; docs/performance/latency-and-cli.md).
    from gateway.cli import ops as ops_cli
    from gateway.intake.pipe import EX_TEMPFAIL, read_inputs, store_inputs, worst_exit_code

    inputs = read_inputs(args.files, args.mbox, sys.stdin.buffer)
    envelope = Envelope(mail_from=args.sender, rcpt_tos=tuple(args.recipient), source="pipe")
    try:
        runtime = build_runtime(settings)
    except TransientError as exc:
        for item in inputs:
            print(f"{item.label}: not stored, try again later: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        processor = runtime.processor("ingest")  # built before storing: its worker name claims the mail
        # Stored already claimed by this run's processor (one transaction, not a store and a claim):
        # killed before processing, the mail is taken up once the claim's lease runs out.
        stored = store_inputs(runtime.inbox, inputs, envelope, worker=processor.worker)
        ids = [s.inbox_id for s in stored if s.inbox_id is not None]
        claimed = [s.claimed for s in stored if s.claimed is not None]
        results = {r.inbox_id: r for r in processor.process_batch(claimed)}
        # Earlier mail left pending (a fault then, no daemon since) is this run's to take up.
        earlier = ops_cli.take_up_pending(
            runtime, role="ingest", limit=ops_cli.EARLIER_PER_INGEST, exclude=ids
        )
        # Customers hear back at once, daemon or not; a relay that is down only delays this.
        runtime.sender("ingest").send_due()
        prefix = settings.gateway.ticket_prefix
        for item in stored:
            if item.inbox_id is None:
                print(f"{item.label}: not stored: {item.problem}", file=sys.stderr)
                continue
            result = results.get(item.inbox_id)
            what = (
                "stored; being processed by another worker"
                if result is None
                else ops_cli.describe(result, prefix)
            )
            print(f"{item.label}: inbox {item.inbox_id}: {what}", file=sys.stderr)
        for result in earlier:
            print(f"earlier inbox {result.inbox_id}: {ops_cli.describe(result, prefix)}", file=sys.stderr)
        return worst_exit_code([s.exit_code for s in stored])
    finally:
        runtime.close()


def tickets_show(args: argparse.Namespace) -> int:
    def show(runtime: Runtime, session: Session, ticket: Ticket, prefix: str) -> int:
        notifications = outbox_store.for_ticket(session, ticket.id)
        if args.json:
            print_json(ticket_json(ticket, prefix, notifications, runtime.settings.response_targets))
        else:
            print(ticket_text(ticket, prefix, notifications, runtime.settings.response_targets))
        return 0

    return _with_ticket(args, show)


def tickets_screenshot(args: argparse.Namespace) -> int:
    def write(runtime: Runtime, session: Session, ticket: Ticket, prefix: str) -> int:
        shots = ticket.screenshots
        if not 1 <= args.number <= len(shots):
            print(
                f"ticketgate: {ticket_ref(prefix, ticket.id)} has {len(shots)} screenshot(s)", file=sys.stderr
            )
            return EX_NOTFOUND
        chosen = shots[args.number - 1]
        ref = ticket_ref(prefix, ticket.id)
        try:
            data = runtime.deps.blobs.get(
                chosen.thumbnail_sha256 if args.thumbnail else chosen.sha256, session=session
            )
        except BlobUnreadable as exc:
            print(f"ticketgate: {ref} screenshot {args.number}: {blob_problem(exc)}", file=sys.stderr)
            return EX_NOTFOUND
        if args.out == "-":
            sys.stdout.buffer.write(data)
        else:
            Path(args.out).write_bytes(data)
            print(f"{args.out}: {chosen.filename} ({chosen.width}x{chosen.height}, {len(data)} bytes, PNG)")
        return 0

    return _with_ticket(args, write)


def _with_ticket(args: argparse.Namespace, action: Callable[[Runtime, Session, Ticket, str], int]) -> int:
    """Run `action` on the ticket `args.ref` names, in one transaction; exit code 64 or 1 if none."""
    settings = settings_for(args)
    prefix = settings.gateway.ticket_prefix
    ticket_id = _ticket_id(args.ref, prefix)
    if ticket_id is None:
        return EX_USAGE
    # One snapshot: the ticket, its messages and notifications as of one moment (a reply being
    # committed meanwhile is shown whole or not at all).
    with open_runtime(settings) as runtime, unit_of_work(runtime.inbox.sessions, snapshot=True) as session:
        ticket = ticket_store.load_ticket(session, ticket_id)
        if ticket is None:
            print(f"ticketgate: no ticket {ticket_ref(prefix, ticket_id)}", file=sys.stderr)
            return EX_NOTFOUND
        return action(runtime, session, ticket, prefix)


def quarantine_list(args: argparse.Namespace) -> int:
    with open_runtime(settings_for(args)) as runtime:
        items = runtime.inbox.summaries(state=QUARANTINED)
    if args.json:
        print_json(
            [
                {
                    "id": i.id,
                    "received_at": i.received_at.isoformat().replace("+00:00", "Z"),
                    "source": i.source,
                    "mail_from": i.mail_from,
                    "rcpt_tos": list(i.rcpt_tos),
                    "size": i.size,
                    "attempts": i.attempts,
                    "reason": i.error,
                }
                for i in items
            ]
        )
        return 0
    if not items:
        print("(quarantine is empty)")
    for i in items:
        print(
            f"{i.id}  {i.received_at:%Y-%m-%d %H:%M}  {i.source}  from {i.mail_from or '<>'}  {i.size} bytes"
        )
        print(f"    {i.error}")
    return 0


def quarantine_show(args: argparse.Namespace) -> int:
    with open_runtime(settings_for(args)) as runtime:
        found = runtime.inbox.get(args.id)
    if found is None or found[0].state != QUARANTINED:
        print(f"ticketgate: inbox item {args.id} is not in quarantine", file=sys.stderr)
        return EX_NOTFOUND
    item, raw = found
    if args.raw:
        sys.stdout.buffer.write(raw)
        return 0
    print(f"inbox {item.id}, received {item.received_at.isoformat()} by {item.source}")
    print(f"envelope: from {item.mail_from or '<>'} to {', '.join(item.rcpt_tos) or '-'}")
    print(f"attempts: {item.attempts}")
    print(f"reason: {item.error}")
    if item.error_detail:
        print(item.error_detail.rstrip())
    print(f"--- original ({item.size} bytes; `--raw` prints it whole) ---")
    print(raw[:2000].decode("utf-8", "replace"))
    return 0


def quarantine_retry(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    with open_runtime(settings) as runtime:
        # Built (the pipeline imported) before the mail is pending again, so a running daemon's
        # worker has no more time to take it first than the moment between two statements.
        processor = runtime.processor("retry")
        ids = runtime.inbox.requeue_quarantined(args.ids or None)
        if not ids:
            print("nothing to retry")
            return 0 if not args.ids else EX_NOTFOUND
        prefix = settings.gateway.ticket_prefix
        for result in processor.process_ids(ids):
            ref = f" {ticket_ref(prefix, result.ticket_id)}" if result.ticket_id else ""
            print(f"inbox {result.inbox_id}: {result.outcome}{ref} ({result.detail})")
    return 0


def outbox_list(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    status = args.status.strip().lower() if args.status else None
    if status is not None and status not in outbox_store.STATUSES:
        valid = ", ".join(outbox_store.STATUSES)
        print(f"ticketgate: unknown outbox status {args.status!r}; one of: {valid}", file=sys.stderr)
        return EX_USAGE
    prefix = settings.gateway.ticket_prefix
    with open_runtime(settings) as runtime, unit_of_work(runtime.inbox.sessions) as session:
        rows = [
            {
                "id": row.id,
                "ticket": ticket_ref(prefix, row.ticket_id) if row.ticket_id is not None else None,
                "template": row.template,
                "to": row.to_address,
                "status": row.status,
                "attempts": row.attempts,
                "message_id": row.message_id,
                "created_at": iso(row.created_at),
                "next_attempt_at": iso(row.next_attempt_at),
                "sent_at": iso(row.sent_at),
                "last_error": row.last_error,
            }
            for row in outbox_store.listing(session, status=status)
        ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("(outbox is empty)")
    for r in rows:
        print(f"{r['id']}  {r['status']:<7}  {r['ticket'] or '-'}  {r['template']}  to {r['to']}  ", end="")
        print(f"tries {r['attempts']}  {r['created_at']}")
        if r["last_error"]:
            print(f"    {r['last_error']}")
    return 0


def outbox_retry(args: argparse.Namespace) -> int:
    from gateway.notify.planner import NotificationPlanner
    from gateway.notify.render import Renderer

    settings = settings_for(args)
    policy = settings.notifications
    with open_runtime(settings) as runtime:
        planner = NotificationPlanner(settings, Renderer(policy.templates_dir))
        with unit_of_work(runtime.inbox.sessions) as session:
            now = utcnow()
            rows = outbox_store.requeue(
                session, args.ids or None, now=now, deadline=now + timedelta(hours=policy.deadline_hours)
            )
            # A row whose template failed is rendered again, with the templates as they are now.
            requeued = [row.id for row in rows if row.raw or planner.render_row(row)]
            for row in rows:
                if not row.raw:
                    print(f"outbox {row.id}: still failing: {row.last_error}")
        if not rows:
            print("nothing to retry")
            return 0 if not args.ids else EX_NOTFOUND
        results = {r.outbox_id: r for r in runtime.sender("retry").send_due()}
        for outbox_id in requeued:
            result = results.get(outbox_id)
            what = "queued" if result is None else result.status
            detail = f" ({result.detail})" if result is not None and result.detail else ""
            print(f"outbox {outbox_id}: {what}{detail}")
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    engine = make_engine(settings.database.url)
    try:
        upgrade(engine)
        print(f"database at revision {', '.join(sorted(current_revisions(engine)))}")
    finally:
        engine.dispose()
    return 0


def _ticket_id(ref: str, prefix: str) -> int | None:
    """The id a reference names; None (after saying why) when it is not a reference."""
    ticket_id = parse_ref(ref, prefix)
    if ticket_id is None:
        print(f"ticketgate: {ref!r} is not a ticket reference like {prefix}-42", file=sys.stderr)
    return ticket_id
