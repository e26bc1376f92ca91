"""The `ticketgate` command: serve, ingest, tickets, quarantine, outbox, db, check-config."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli import explain as explain_cli
from gateway.cli import init as init_cli
from gateway.cli import ops as ops_cli
from gateway.cli import tickets as cli_tickets
from gateway.cli.inbox import add_inbox_commands
from gateway.cli.storage import add_storage_commands
from gateway.config import Settings, load_settings
from gateway.daemon.runtime import Runtime, SchemaOutOfDate, build_runtime, open_runtime
from gateway.domain import Envelope
from gateway.errors import ConfigError, TransientError
from gateway.intake.pipe import EX_TEMPFAIL, read_inputs, store_inputs, worst_exit_code
from gateway.ops.logs import configure as configure_logging
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
EX_CONFIG = 78

log = logging.getLogger("gateway")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # --config and -v are accepted before and after the command; SUPPRESS keeps a subcommand's
    # parser from overwriting a value given before the command with its own empty default.
    args.config = getattr(args, "config", None)
    args.verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose
        else (logging.INFO if args.command == "serve" else logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # mail-parser warns about every MIME part it leaves to us; those are not operator news.
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    handler: Callable[[argparse.Namespace], int] = args.handler
    init_cli.say_when_no_config(args)
    try:
        return handler(args)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"ticketgate: config error: {line}", file=sys.stderr)
        return EX_CONFIG
    except SchemaOutOfDate as exc:
        print(f"ticketgate: {exc}", file=sys.stderr)
        return EX_CONFIG
    except TransientError as exc:
        print(f"ticketgate: temporary failure, try again later: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except BlobUnreadable as exc:  # a command that met a damaged store says so, in one line
        print(f"ticketgate: {blob_problem(exc)}", file=sys.stderr)
        return EX_NOTFOUND


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="TOML config file (default: $TICKETGATE_CONFIG, ./ticketgate.toml)",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug detail"
    )

    parser = argparse.ArgumentParser(
        prog="ticketgate", description="E-mail to ticket gateway.", parents=[common]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the daemon")
    serve.set_defaults(handler=_serve)

    ingest = commands.add_parser("ingest", parents=[common], help="take mail from files, an mbox or stdin")
    ingest.add_argument("files", nargs="*", metavar="FILE", help="one mail per file; '-' or none: stdin")
    ingest.add_argument("--mbox", action="append", default=[], metavar="FILE", help="an mbox of mails")
    ingest.add_argument("--sender", default="", help="envelope sender (an MTA passes ${sender})")
    ingest.add_argument(
        "--recipient", action="append", default=[], help="envelope recipient (an MTA passes ${recipient})"
    )
    ingest.set_defaults(handler=_ingest)

    tickets = commands.add_parser("tickets", parents=[common], help="the ticket queue")
    tickets_sub = tickets.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")
    listing = tickets_sub.add_parser("list", parents=[common], help="the queue, in queue order")
    cli_tickets.register_list(listing, _settings)
    show = tickets_sub.add_parser("show", parents=[common], help="one ticket, whole")
    show.add_argument("ref", help="ticket reference, e.g. SP-42")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_tickets_show)
    shot = tickets_sub.add_parser("screenshot", parents=[common], help="write a screenshot to a file")
    shot.add_argument("ref", help="ticket reference, e.g. SP-42")
    shot.add_argument("number", type=int, help="which screenshot: 1 is the first in `tickets show`")
    shot.add_argument("--out", required=True, help="the PNG file to write ('-': standard output)")
    shot.add_argument("--thumbnail", action="store_true", help="the 320x320 thumbnail instead")
    shot.set_defaults(handler=_tickets_screenshot)
    cli_tickets.register(tickets_sub, commands, common, _settings)

    quarantine = commands.add_parser("quarantine", parents=[common], help="mail that could not be processed")
    q_sub = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")
    q_list = q_sub.add_parser("list", parents=[common], help="quarantined mail with its reason")
    q_list.add_argument("--json", action="store_true")
    q_list.set_defaults(handler=_quarantine_list)
    q_show = q_sub.add_parser("show", parents=[common], help="one quarantined mail: reason, traceback, raw")
    q_show.add_argument("id", type=int)
    q_show.add_argument("--raw", action="store_true", help="print only the original bytes")
    q_show.set_defaults(handler=_quarantine_show)
    q_retry = q_sub.add_parser("retry", parents=[common], help="process quarantined mail again")
    q_retry.add_argument("ids", nargs="*", type=int, help="inbox ids (default: all)")
    q_retry.set_defaults(handler=_quarantine_retry)

    out = commands.add_parser("outbox", parents=[common], help="notifications and their delivery state")
    o_sub = out.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    o_list = o_sub.add_parser("list", parents=[common], help="every notification, oldest first")
    o_list.add_argument("--status", help=f"only this status ({', '.join(outbox_store.STATUSES)})")
    o_list.add_argument("--json", action="store_true", help="machine-readable output")
    o_list.set_defaults(handler=_outbox_list)
    o_retry = o_sub.add_parser("retry", parents=[common], help="send notifications again, now")
    o_retry.add_argument("ids", nargs="*", type=int, help="outbox ids (default: every failed and dead one)")
    o_retry.set_defaults(handler=_outbox_retry)

    add_inbox_commands(commands, common)
    explain_cli.register(commands, common)
    init_cli.register(commands, common)

    db = commands.add_parser("db", parents=[common], help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_upgrade = db_sub.add_parser("upgrade", parents=[common], help="apply schema migrations")
    db_upgrade.set_defaults(handler=_db_upgrade)
    ops_cli.register_db(db_sub, common, _settings)

    add_storage_commands(commands, common)

    check = commands.add_parser("check-config", parents=[common], help="validate the configuration")
    check.set_defaults(handler=_check_config)
    ops_cli.register(commands, common, _settings)
    return parser


# --- commands -------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from gateway.daemon.main import run_daemon  # the daemon pulls in aiosmtpd; other commands need not

    return run_daemon(_settings(args))


def _ingest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    inputs = read_inputs(args.files, args.mbox, sys.stdin.buffer)
    envelope = Envelope(mail_from=args.sender, rcpt_tos=tuple(args.recipient), source="pipe")
    try:
        runtime = build_runtime(settings)
    except TransientError as exc:
        for item in inputs:
            print(f"{item.label}: not stored, try again later: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        processor = runtime.processor("ingest")  # before the mail is stored: see _quarantine_retry
        stored = store_inputs(runtime.inbox, inputs, envelope)
        ids = [s.inbox_id for s in stored if s.inbox_id is not None]
        results = {r.inbox_id: r for r in processor.process_ids(ids)} if ids else {}
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


def _tickets_show(args: argparse.Namespace) -> int:
    def show(runtime: Runtime, session: Session, ticket: Ticket, prefix: str) -> int:
        notifications = outbox_store.for_ticket(session, ticket.id)
        if args.json:
            print_json(ticket_json(ticket, prefix, notifications, runtime.settings.response_targets))
        else:
            print(ticket_text(ticket, prefix, notifications, runtime.settings.response_targets))
        return 0

    return _with_ticket(args, show)


def _tickets_screenshot(args: argparse.Namespace) -> int:
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
    settings = _settings(args)
    prefix = settings.gateway.ticket_prefix
    ticket_id = _ticket_id(args.ref, prefix)
    if ticket_id is None:
        return EX_USAGE
    with open_runtime(settings) as runtime, unit_of_work(runtime.inbox.sessions) as session:
        ticket = ticket_store.load_ticket(session, ticket_id)
        if ticket is None:
            print(f"ticketgate: no ticket {ticket_ref(prefix, ticket_id)}", file=sys.stderr)
            return EX_NOTFOUND
        return action(runtime, session, ticket, prefix)


def _quarantine_list(args: argparse.Namespace) -> int:
    with open_runtime(_settings(args)) as runtime:
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


def _quarantine_show(args: argparse.Namespace) -> int:
    with open_runtime(_settings(args)) as runtime:
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


def _quarantine_retry(args: argparse.Namespace) -> int:
    settings = _settings(args)
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


def _outbox_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
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


def _outbox_retry(args: argparse.Namespace) -> int:
    from gateway.notify.planner import NotificationPlanner
    from gateway.notify.render import Renderer

    settings = _settings(args)
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


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    engine = make_engine(settings.database.url)
    try:
        upgrade(engine)
        print(f"database at revision {', '.join(sorted(current_revisions(engine)))}")
    finally:
        engine.dispose()
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from gateway.config.sections.rules import rule_warnings

    settings = _settings(args)
    for key, warning in rule_warnings(settings.rules):  # allowed, but rarely what was meant
        print(f"ticketgate: config warning: {key}: {warning}", file=sys.stderr)
    where = settings.source or "embedded defaults (no config file found)"
    for notice in settings.notifications.notices:
        print(f"ticketgate: note: {notice}", file=sys.stderr)
    print(f"config OK: {where}")
    return 0


# --- helpers --------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    configure_logging(settings.logging.format)
    return settings


def _ticket_id(ref: str, prefix: str) -> int | None:
    """The id a reference names; None (after saying why) when it is not a reference."""
    ticket_id = parse_ref(ref, prefix)
    if ticket_id is None:
        print(f"ticketgate: {ref!r} is not a ticket reference like {prefix}-42", file=sys.stderr)
    return ticket_id


if __name__ == "__main__":
    sys.exit(main())
