"""The `ticketgate` command table: every command, its arguments and its help, without the code
that runs them.

Each handler is named as module and function (`Lazy`) and imported only when its command is
chosen, so `--help` imports no SQLAlchemy, and `tickets list` neither Jinja2 nor the pipeline:
the import of every command's code was most of each command's 0.6-0.77 s
(docs/performance/latency-and-cli.md). The few value lists the help names are spelled here; a
unit test holds them to the store's own (tests/unit/test_cli_commands.py).
"""

from __future__ import annotations

import argparse
import functools
import importlib
from dataclasses import dataclass
from typing import Any

from gateway.cli import explain as explain_cli  # these two import only the standard library at first
from gateway.cli import init as init_cli

# gateway.store.outbox.STATUSES, gateway.store.inbox_outcomes.OUTCOMES, gateway.config.BlobStoreKind
OUTBOX_STATUSES = ("queued", "retry", "sent", "failed", "dead", "bounced")
INBOX_OUTCOMES = (
    "ticket", "reply", "duplicate", "bounce", "auto_reply", "abuse_report", "spam", "flood",
    "my_tickets", "dropped", "queue", "quarantine", "pending",
)  # fmt: skip
BLOB_STORES = ("database", "dir")


@dataclass(frozen=True)
class Lazy:
    """A command's handler, `module.function(args)` (or `(args, settings)` with `with_settings`),
    imported when the command runs."""

    module: str
    function: str
    with_settings: bool = False

    def __call__(self, args: argparse.Namespace) -> int:
        handler = getattr(importlib.import_module(self.module), self.function)
        if not self.with_settings:
            return int(handler(args))
        from gateway.cli.settings import settings_for

        return int(handler(args, settings_for(args)))


@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """Every command, its arguments and help; handlers named, imported when chosen. Built once per
    process: `serve` runs every command its control socket answers with it (building it costs
    about as much as a warm `status` itself: 9.4 against 10.1 ms, measured in one process), and
    parsing leaves it as it was (each parse fills a namespace of its own; `append` options copy
    their default list)."""
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
    serve.set_defaults(handler=Lazy("gateway.cli.queue", "serve"))

    ingest = commands.add_parser("ingest", parents=[common], help="take mail from files, an mbox or stdin")
    ingest.add_argument("files", nargs="*", metavar="FILE", help="one mail per file; '-' or none: stdin")
    ingest.add_argument("--mbox", action="append", default=[], metavar="FILE", help="an mbox of mails")
    ingest.add_argument("--sender", default="", help="envelope sender (an MTA passes ${sender})")
    ingest.add_argument(
        "--recipient", action="append", default=[], help="envelope recipient (an MTA passes ${recipient})"
    )
    ingest.set_defaults(handler=Lazy("gateway.cli.queue", "ingest"))

    tickets = commands.add_parser("tickets", parents=[common], help="the ticket queue")
    tickets_sub = tickets.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")
    listing = tickets_sub.add_parser("list", parents=[common], help="the queue, in queue order")
    _tickets_list_arguments(listing)
    show = tickets_sub.add_parser("show", parents=[common], help="one ticket, whole")
    show.add_argument("ref", help="ticket reference, e.g. SP-42")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=Lazy("gateway.cli.queue", "tickets_show"))
    shot = tickets_sub.add_parser("screenshot", parents=[common], help="write a screenshot to a file")
    shot.add_argument("ref", help="ticket reference, e.g. SP-42")
    shot.add_argument("number", type=int, help="which screenshot: 1 is the first in `tickets show`")
    shot.add_argument("--out", required=True, help="the PNG file to write ('-': standard output)")
    shot.add_argument("--thumbnail", action="store_true", help="the 320x320 thumbnail instead")
    shot.set_defaults(handler=Lazy("gateway.cli.queue", "tickets_screenshot"))
    _staff_commands(tickets_sub, commands, common)

    quarantine = commands.add_parser("quarantine", parents=[common], help="mail that could not be processed")
    q_sub = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="ACTION")
    q_list = q_sub.add_parser("list", parents=[common], help="quarantined mail with its reason")
    q_list.add_argument("--json", action="store_true")
    q_list.set_defaults(handler=Lazy("gateway.cli.queue", "quarantine_list"))
    q_show = q_sub.add_parser("show", parents=[common], help="one quarantined mail: reason, traceback, raw")
    q_show.add_argument("id", type=int)
    q_show.add_argument("--raw", action="store_true", help="print only the original bytes")
    q_show.set_defaults(handler=Lazy("gateway.cli.queue", "quarantine_show"))
    q_retry = q_sub.add_parser("retry", parents=[common], help="process quarantined mail again")
    q_retry.add_argument("ids", nargs="*", type=int, help="inbox ids (default: all)")
    q_retry.set_defaults(handler=Lazy("gateway.cli.queue", "quarantine_retry"))

    out = commands.add_parser("outbox", parents=[common], help="notifications and their delivery state")
    o_sub = out.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    o_list = o_sub.add_parser("list", parents=[common], help="every notification, oldest first")
    o_list.add_argument("--status", help=f"only this status ({', '.join(OUTBOX_STATUSES)})")
    o_list.add_argument("--json", action="store_true", help="machine-readable output")
    o_list.set_defaults(handler=Lazy("gateway.cli.queue", "outbox_list"))
    o_retry = o_sub.add_parser("retry", parents=[common], help="send notifications again, now")
    o_retry.add_argument("ids", nargs="*", type=int, help="outbox ids (default: every failed and dead one)")
    o_retry.set_defaults(handler=Lazy("gateway.cli.queue", "outbox_retry"))

    _inbox_commands(commands, common)
    explain_cli.register(commands, common)
    init_cli.register(commands, common)

    db = commands.add_parser("db", parents=[common], help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_upgrade = db_sub.add_parser("upgrade", parents=[common], help="apply schema migrations")
    db_upgrade.set_defaults(handler=Lazy("gateway.cli.queue", "db_upgrade"))
    _db_commands(db_sub, common)

    _storage_commands(commands, common)
    _imap_commands(commands, common)

    check = commands.add_parser("check-config", parents=[common], help="validate the configuration")
    check.set_defaults(handler=Lazy("gateway.cli.settings", "check_config"))
    _ops_commands(commands, common)
    return parser


def _tickets_list_arguments(listing: argparse.ArgumentParser) -> None:
    """The filters of `tickets list`; several of one kind are alternatives, different kinds all apply."""
    many = {"action": "append", "default": []}
    listing.add_argument("--status", **many, help="only this status (e.g. open, 'in progress', waiting)")
    listing.add_argument("--priority", **many, help="only this priority (low, medium, high, urgent)")
    listing.add_argument("--category", **many, help="only this category (its name or a tag word)")
    listing.add_argument("--tier", **many, help="only this tier (free, pro, enterprise)")
    listing.add_argument("--assignee", **many, help="only tickets assigned to ADDRESS ('none': unassigned)")
    listing.add_argument("--requester", **many, help="only tickets this address opened")
    listing.add_argument("--since", help="opened since: 2026-12-01, an ISO time, 7d, 12h, 30m")
    listing.add_argument("--search", help="only tickets whose title or any message contains TEXT")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=Lazy("gateway.cli.tickets", "_tickets_list", with_settings=True))


def _staff_commands(tickets_sub: Any, commands: Any, common: argparse.ArgumentParser) -> None:
    """`tickets update`, `tickets export` and `undeliverable list|clear`."""
    update = tickets_sub.add_parser(
        "update", parents=[common], help="change a ticket, note or reply as staff (like a staff mail)"
    )
    update.add_argument("ref", help="ticket reference, e.g. SP-42")
    update.add_argument("--status", help="open, in-progress, waiting, resolved or closed")
    update.add_argument("--priority", help="low, medium, high or urgent (or a tag word)")
    update.add_argument("--category", help="a category name or a tag word")
    update.add_argument("--assign", metavar="ADDRESS", help="staff ADDRESS, 'me' (--as), 'none'")
    update.add_argument("--cc-add", action="append", default=[], metavar="ADDRESS", help="copy ADDRESS")
    update.add_argument("--cc-remove", action="append", default=[], metavar="ADDRESS", help="uncopy ADDRESS")
    update.add_argument("--merge", metavar="REF", help="merge this ticket into REF (it is closed)")
    text = update.add_mutually_exclusive_group()
    text.add_argument("--note", metavar="TEXT", help="an internal note (the requester is not told)")
    text.add_argument(
        "--reply-file", metavar="F", help="a public reply to the requester, from a UTF-8 file ('-': stdin)"
    )
    update.add_argument("--as", dest="as_staff", required=True, metavar="STAFF_ADDRESS", help="who acts")
    update.add_argument("--json", action="store_true", help="print the ticket afterwards as JSON")
    update.set_defaults(handler=Lazy("gateway.cli.tickets", "_tickets_update", with_settings=True))

    export = tickets_sub.add_parser(
        "export", parents=[common], help="write a ticket's original mails, files and JSON to a folder"
    )
    export.add_argument("ref", help="ticket reference, e.g. SP-42")
    export.add_argument("dir", help="the folder to write (created; must be empty if it exists)")
    export.set_defaults(handler=Lazy("gateway.cli.tickets", "_tickets_export", with_settings=True))

    erase = tickets_sub.add_parser(
        "erase", parents=[common], help="remove a person's mails, names, files and address (GDPR)"
    )
    erase.add_argument("--requester", required=True, metavar="ADDRESS", help="whose data to remove")
    erase.add_argument("--yes", action="store_true", help="really erase: it cannot be undone")
    erase.set_defaults(handler=Lazy("gateway.cli.tickets", "_tickets_erase", with_settings=True))

    undeliverable = commands.add_parser(
        "undeliverable", parents=[common], help="addresses that bounced for good and get no mail"
    )
    u_sub = undeliverable.add_subparsers(dest="undeliverable_command", required=True, metavar="ACTION")
    u_list = u_sub.add_parser("list", parents=[common], help="every address marked undeliverable")
    u_list.add_argument("--json", action="store_true", help="machine-readable output")
    u_list.set_defaults(handler=Lazy("gateway.cli.tickets", "_undeliverable_list", with_settings=True))
    u_clear = u_sub.add_parser("clear", parents=[common], help="mail this address again")
    u_clear.add_argument("address")
    u_clear.set_defaults(handler=Lazy("gateway.cli.tickets", "_undeliverable_clear", with_settings=True))


def _ops_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    status = commands.add_parser("status", parents=[common], help="one screen: intake, queues, IMAP, nodes")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=Lazy("gateway.cli.ops", "status_args", with_settings=True))
    process = commands.add_parser(
        "process", parents=[common], help="process what is pending in the inbox, send what is due, exit"
    )
    process.set_defaults(handler=Lazy("gateway.cli.ops", "process_args", with_settings=True))


def _db_commands(db_commands: Any, common: argparse.ArgumentParser) -> None:
    backup = db_commands.add_parser("backup", parents=[common], help="an online, consistent copy (SQLite)")
    backup.add_argument("path", help="the file to write (must not exist yet)")
    backup.set_defaults(handler=Lazy("gateway.cli.ops", "backup_args", with_settings=True))


def _inbox_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `inbox` and its actions on the `ticketgate` subcommand parser."""
    inbox = commands.add_parser("inbox", parents=[common], help="every accepted mail and its outcome")
    sub = inbox.add_subparsers(dest="inbox_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", parents=[common], help="accepted mail, oldest first")
    listing.add_argument("--outcome", help=f"only this outcome ({', '.join(INBOX_OUTCOMES)})")
    listing.add_argument(
        "--since", help="received at or after: an ISO date or time (UTC unless it says), or 30m, 2h, 7d ago"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=Lazy("gateway.cli.inbox", "_list"))
    show = sub.add_parser("show", parents=[common], help="one accepted mail: envelope, outcome, original")
    show.add_argument("id", type=int, help="inbox id")
    show.add_argument("--raw", action="store_true", help="print only the original bytes")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=Lazy("gateway.cli.inbox", "_show"))
    rel = sub.add_parser(
        "release", parents=[common], help="process a spam, flood or dropped mail as if it were not"
    )
    rel.add_argument("id", type=int, help="inbox id")
    rel.set_defaults(handler=Lazy("gateway.cli.inbox", "_release"))
    explain_cli.register_inbox(sub, common)


def _imap_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """`imap reconcile [--take] [--days N] [--json]` (gateway/cli/imap.py)."""
    imap = commands.add_parser("imap", parents=[common], help="IMAP mailboxes: reconcile with the inbox")
    sub = imap.add_subparsers(dest="imap_command", required=True, metavar="ACTION")
    reconcile = sub.add_parser(
        "reconcile", parents=[common], help="find mail left in the IMAP folders that the inbox lacks"
    )
    reconcile.add_argument("--take", action="store_true", help="take what is found into the inbox")
    reconcile.add_argument(
        "--days",
        type=int,
        default=None,
        help="how far back to read the processed folder (default 7; 0: the whole folder)",
    )
    reconcile.add_argument("--json", action="store_true", help="machine-readable output")
    reconcile.set_defaults(handler=Lazy("gateway.cli.imap", "reconcile_args", with_settings=True))


def _storage_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """The `storage` command and its actions, on the `ticketgate` parser's subcommands."""
    storage = commands.add_parser("storage", parents=[common], help="where screenshots and attachments are")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True, metavar="ACTION")
    migrate = storage_sub.add_parser(
        "migrate",
        parents=[common],
        help="copy every blob from the other store into this one (idempotent, resumable)",
    )
    migrate.add_argument(
        "--to",
        required=True,
        choices=list(BLOB_STORES),
        help="database: the blobs table; dir: the folder storage.blob_dir",
    )
    migrate.set_defaults(handler=Lazy("gateway.cli.storage", "storage_migrate"))
