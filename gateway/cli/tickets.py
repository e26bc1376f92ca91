"""The CLI for staff (SPEC §12): `tickets list` filters, `tickets update … --as`, `tickets export`,
`undeliverable list|clear`.

`tickets update` is not a second way to change a ticket: its options become the same understood
commands a staff mail carries (`#status`, `#priority`, `#category`, `#assign`, `#note`), planned by
`plan_commands` against the lifecycle table and applied by `apply_reply`, the functions the reply
stage uses; the notification planner then tells the same people the same things. What differs is
only what a command line can do better than a mail: a refused command refuses the whole update
(nothing changes, the reason is printed, exit 65), and the receipt (`command_result`) is printed
instead of mailed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from gateway.config import Settings
from gateway.daemon.runtime import Runtime, open_runtime
from gateway.domain import Address, Tier, Visibility
from gateway.present import (
    iso,
    parse_ref,
    print_json,
    queue_table,
    ticket_json,
    ticket_ref,
    ticket_summary_json,
)
from gateway.store import outbox as outbox_store
from gateway.store import staff_queries
from gateway.store import tickets as ticket_store
from gateway.store.blobs import BlobCorruptError, BlobNotFoundError, blob_problem
from gateway.store.db import unit_of_work
from gateway.store.models import utcnow

if TYPE_CHECKING:  # imported by the command that uses them: `tickets list` and `show` start without
    # them (~0.4x `python -c pass` of imports; docs/performance/latency-and-cli.md)
    from gateway.pipeline.commands import Command, CommandBlock
    from gateway.pipeline.staff_auth import StaffAuth

EX_NOTFOUND = 1
EX_USAGE = 64
EX_DATAERR = 65  # the update was refused: not a staff address, an unknown value, an invalid transition
EX_NOINPUT = 66  # the reply file cannot be read
EX_CANTCREAT = 73  # the export folder is not empty or cannot be written

THREADED_BY_CLI = "cli"


# --- tickets list ------------------------------------------------------------------------------


class _Refused(Exception):
    """A value or change the command refuses; the message says why, for stderr."""


def _tickets_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        wanted = _queue_filter(args, settings)
    except _Refused as exc:
        print(f"ticketgate: {exc}", file=sys.stderr)
        return EX_USAGE
    prefix = settings.gateway.ticket_prefix
    with open_runtime(settings) as runtime, unit_of_work(runtime.inbox.sessions, snapshot=True) as session:
        found = staff_queries.filtered_queue(session, wanted)
        if args.json:
            print_json([ticket_summary_json(t, prefix, settings.response_targets) for t in found])
        else:
            print(queue_table(found, prefix, settings.response_targets))
    return 0


def _queue_filter(args: argparse.Namespace, settings: Settings) -> staff_queries.QueueFilter:
    assignees: list[str | None] = [
        None if a.strip().lower() in ("none", "-", "nobody", "unassigned") else a.strip().lower()
        for a in args.assignee
    ]
    return staff_queries.QueueFilter(
        statuses=[_value("status", s, settings) for s in args.status],
        priorities=[_value("priority", p, settings) for p in args.priority],
        categories=[_value("category", c, settings) for c in args.category],
        tiers=[_tier(t) for t in args.tier],
        assignees=assignees,
        requesters=[r.strip().lower() for r in args.requester],
        since=_since(args.since, now=utcnow()) if args.since else None,
        search=args.search or None,
    )


def _value(field: str, value: str, settings: Settings) -> str:
    """A status, priority or category as a staff mail would write it (`#status waiting`), understood
    with the same words, so the CLI and mail never disagree on what a word means."""
    command = _command(field, value, settings)
    assert command.value is not None
    return command.value


def _command(field: str, value: str, settings: Settings) -> Command:
    from gateway.pipeline.commands import parse_commands  # a filter's words, as a staff mail's

    block = parse_commands(
        f"#{field} {value.strip()}",
        vocabulary=settings.tickets.vocabulary,
        categories=settings.tickets.categories,
    )
    if len(block.commands) != 1 or not block.commands[0].understood:
        problem = block.commands[0].problem if block.commands else f"no {field} given"
        raise _Refused(problem or f"{field} {value!r} is not understood")
    return block.commands[0]


def _tier(value: str) -> str:
    for tier in Tier:
        if tier.value.lower() == value.strip().lower():
            return tier.value
    raise _Refused(f"unknown tier {value!r}: one of {', '.join(t.value for t in Tier)}")


_RELATIVE = re.compile(r"(\d+)\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def _since(text: str, *, now: datetime) -> datetime:
    """`7d`, `12h`, `30m` ago, or an ISO date or time (UTC unless it says otherwise)."""
    relative = _RELATIVE.fullmatch(text.strip().lower())
    if relative is not None:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _Refused(
            f"--since {text!r}: give a date (2026-12-01), an ISO time, or 7d / 12h / 30m"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# --- tickets update ----------------------------------------------------------------------------


def _tickets_update(args: argparse.Namespace, settings: Settings) -> int:
    prefix = settings.gateway.ticket_prefix
    ticket_id = parse_ref(args.ref, prefix)
    if ticket_id is None:
        print(f"ticketgate: {args.ref!r} is not a ticket reference like {prefix}-42", file=sys.stderr)
        return EX_USAGE
    staff_address = args.as_staff.strip().lower()
    if staff_address not in {a.strip().lower() for a in settings.staff.addresses}:
        print(
            f"ticketgate: --as {args.as_staff}: not a configured staff address (staff.addresses); "
            "nothing changed",
            file=sys.stderr,
        )
        return EX_DATAERR
    try:
        text, public = _update_text(args)
    except OSError as exc:
        print(f"ticketgate: --reply-file {args.reply_file}: {exc.strerror or exc}", file=sys.stderr)
        return EX_NOINPUT
    except UnicodeDecodeError:
        print(f"ticketgate: --reply-file {args.reply_file}: not UTF-8 text; nothing changed", file=sys.stderr)
        return EX_DATAERR
    lines = _command_lines(args, internal=not public)
    if not lines and not text:
        print("ticketgate: nothing to do: give a change, --note or --reply-file", file=sys.stderr)
        return EX_USAGE
    if public and not text:
        print("ticketgate: --reply-file is empty; nothing changed", file=sys.stderr)
        return EX_DATAERR

    from gateway.pipeline.commands import CommandBlock, parse_commands

    block = parse_commands(
        "\n".join(lines), vocabulary=settings.tickets.vocabulary, categories=settings.tickets.categories
    )
    block = CommandBlock(block.commands, text)
    author = Address(staff_address)
    from gateway.pipeline.staff_auth import StaffAuth, StaffMethod  # DKIM and DNS: `update` only

    staff = StaffAuth(staff_address=True, method=StaffMethod.COMMAND_LINE)
    with open_runtime(settings) as runtime:
        try:
            outcome = _apply_update(runtime, ticket_id, block, lines, author, staff, prefix)
        except _Refused as exc:
            print(f"ticketgate: {ticket_ref(prefix, ticket_id)}: {exc}", file=sys.stderr)
            return EX_DATAERR
        if outcome is None:
            print(f"ticketgate: no ticket {ticket_ref(prefix, ticket_id)}", file=sys.stderr)
            return EX_NOTFOUND
        # The requester hears at once, daemon or not (as `ingest` does); a relay that is down only delays it.
        runtime.sender("cli").send_due()
        if args.json:
            with unit_of_work(runtime.inbox.sessions) as session:
                ticket = ticket_store.load_ticket(session, ticket_id)
                assert ticket is not None
                rows = outbox_store.for_ticket(session, ticket_id)
                print_json(ticket_json(ticket, prefix, rows, settings.response_targets))
        else:
            print("\n".join(outcome))
    return 0


def _update_text(args: argparse.Namespace) -> tuple[str, bool]:
    """The text of the entry, and whether it is a public reply."""
    if args.reply_file is not None:
        raw = sys.stdin.buffer.read() if args.reply_file == "-" else Path(args.reply_file).read_bytes()
        return raw.decode("utf-8").replace("\r\n", "\n").strip(), True
    return (args.note or "").strip(), False


def _command_lines(args: argparse.Namespace, *, internal: bool) -> list[str]:
    """The options as the command lines a staff mail would carry."""
    lines = [
        f"#{word} {value.strip()}"
        for word, value in (
            ("status", args.status),
            ("priority", args.priority),
            ("category", args.category),
            ("assign", args.assign),
        )
        if value is not None
    ]
    lines += [f"#cc add {address.strip()}" for address in args.cc_add]
    lines += [f"#cc remove {address.strip()}" for address in args.cc_remove]
    if args.merge is not None:
        lines.append(f"#merge {args.merge.strip()}")
    if internal and args.note is not None:
        lines.append("#note")
    return lines


def _apply_update(
    runtime: Runtime,
    ticket_id: int,
    block: CommandBlock,
    lines: Sequence[str],
    author: Address,
    staff: StaffAuth,
    prefix: str,
) -> list[str] | None:
    """Plan and apply the update in one transaction; None when there is no such ticket. Raises
    `_Refused` (the transaction rolls back: nothing changed) when any command is refused."""
    from gateway.pipeline.happenings import CommandResult
    from gateway.pipeline.reply_plan import plan_commands
    from gateway.pipeline.writes.apply_reply import apply_reply, lock_ticket
    from gateway.pipeline.writes.copies_merges import copy_refusal, merge_targets

    settings = runtime.settings
    notifier = runtime.deps.notifier  # built before the ticket is locked, not while it is
    with unit_of_work(runtime.inbox.sessions) as session:
        if ticket_store.load_ticket(session, ticket_id) is None:
            return None
        ticket, before = lock_ticket(session, ticket_id)
        plan = plan_commands(
            before,
            block,
            sender=author.address,
            staff=staff,
            staff_addresses=settings.staff.addresses,
            staff_reply_status=settings.tickets.staff_reply_status,
            merge_targets=merge_targets(session, block, ticket_id=ticket.id, prefix=prefix),
            refuse_copy=copy_refusal(ticket, settings, runtime.deps.ours),
        )
        if plan.refused:
            raise _Refused("; ".join(f"{r.line}: {r.reason}" for r in plan.refused) + "; nothing changed")
        ref = ticket_ref(prefix, ticket.id)
        domain = author.address.rpartition("@")[2]
        message_id = f"{ref}.cli.{uuid4().hex}@{domain}"
        raw = _entry_mail(author.address, ref, ticket.title, lines, block.text, message_id)
        inbox_id = staff_queries.record_cli_mail(
            session, raw=raw, author=author.address, ticket_id=ticket.id, message_id=message_id
        )
        applied = apply_reply(
            session,
            ticket,
            plan,
            author=author,
            staff=staff,
            inbox_id=inbox_id,
            message_id=message_id,
            subject=f"[{ref}] {ticket.title}",
            threaded_by=THREADED_BY_CLI,
            notify=True,
            settings=settings,
            ours=runtime.deps.ours,
        )
        # The receipt a staff mail would get by mail is what this command prints.
        happenings = [h for h in applied.happenings if not isinstance(h, CommandResult)]
        if notifier is not None:
            notifier.plan(session, happenings, inbox_id=inbox_id)
        kind = "public reply" if plan.visibility == Visibility.PUBLIC else "internal entry"
        said = [f"{ref}: {kind} by {author.address}"]
        said += [f"  {c.field}: {c.old or '-'} -> {c.new or '-'}" for c in plan.changes]
        if not plan.changes:
            said.append("  no field changed")
        for row in outbox_store.for_ticket(session, ticket.id):
            if row.inbox_id == inbox_id:
                said.append(f"  notification queued: {row.template} to {row.to_address}")
        return said


def _entry_mail(author: str, ref: str, title: str, lines: Sequence[str], text: str, message_id: str) -> bytes:
    """The entry as the staff mail it stands for: the command lines on top, then the text."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    mail = EmailMessage()
    mail["From"] = author
    mail["Subject"] = f"[{ref}] {title}"
    mail["Date"] = format_datetime(utcnow())
    mail["Message-ID"] = f"<{message_id}>"
    mail["X-Ticketgate-Entry"] = "ticketgate tickets update"
    body = "\n".join(lines) + ("\n\n" if lines and text else "") + text
    mail.set_content(body + "\n")
    return mail.as_bytes()


# --- tickets export ----------------------------------------------------------------------------


def _tickets_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write `DIR/SP-42.json`, `DIR/messages/NNN-role.eml` (each message's original, byte for byte),
    `DIR/attachments/NNN-name` and `DIR/screenshots/NNN-name.png` (NNN: the message they came with)."""
    from gateway.mail.filenames import sanitize_filename

    prefix = settings.gateway.ticket_prefix
    ticket_id = parse_ref(args.ref, prefix)
    if ticket_id is None:
        print(f"ticketgate: {args.ref!r} is not a ticket reference like {prefix}-42", file=sys.stderr)
        return EX_USAGE
    target = Path(args.dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        print(f"ticketgate: {target}: not an empty folder; nothing written", file=sys.stderr)
        return EX_CANTCREAT
    with open_runtime(settings) as runtime, unit_of_work(runtime.inbox.sessions) as session:
        ticket = ticket_store.load_ticket(session, ticket_id)
        if ticket is None:
            print(f"ticketgate: no ticket {ticket_ref(prefix, ticket_id)}", file=sys.stderr)
            return EX_NOTFOUND
        ref = ticket_ref(prefix, ticket.id)
        notifications = outbox_store.for_ticket(session, ticket.id)
        data = ticket_json(ticket, prefix, notifications, settings.response_targets)
        number = {m.id: n for n, m in enumerate(ticket.messages, start=1)}
        role = {m.id: m.role for m in ticket.messages}
        files: list[tuple[str, bytes]] = [(f"{ref}.json", _json_bytes(data))]
        for message_id, raw in staff_queries.originals(session, ticket.id):
            files.append((f"messages/{number[message_id]:03d}-{role[message_id]}.eml", raw))
        blobs = runtime.deps.blobs
        missing: list[str] = []
        stored: list[tuple[str, str]] = []
        for attachment in ticket.attachments:
            name = sanitize_filename(attachment.filename, fallback="attachment")
            stored.append((f"attachments/{number[attachment.message_db_id]:03d}-{name}", attachment.sha256))
        for shot in ticket.screenshots:
            stem = Path(sanitize_filename(shot.filename, fallback="screenshot")).stem or "screenshot"
            stored.append((f"screenshots/{number[shot.message_db_id]:03d}-{stem}.png", shot.sha256))
        for where, sha256 in stored:
            try:
                files.append((where, blobs.get(sha256)))
            except (BlobNotFoundError, BlobCorruptError) as exc:  # the rest is still worth having
                missing.append(f"{where}: {blob_problem(exc)}")
    try:
        written = _write_all(target, files)
    except OSError as exc:
        print(f"ticketgate: {target}: {exc}", file=sys.stderr)
        return EX_CANTCREAT
    print(f"{ref}: {len(written)} files written to {target}")
    for path in written:
        print(f"  {path}")
    for problem in missing:
        print(f"ticketgate: not written: {problem}", file=sys.stderr)
    return EX_NOTFOUND if missing else 0


def _write_all(target: Path, files: Sequence[tuple[str, bytes]]) -> list[str]:
    """Write each file under `target`, never over another: a second file of one name gets `-2`."""
    written: list[str] = []
    for relative, data in files:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        stem, suffix, n = path.stem, path.suffix, 1
        while True:
            try:
                with path.open("xb") as handle:
                    handle.write(data)
                break
            except FileExistsError:
                n += 1
                path = path.with_name(f"{stem}-{n}{suffix}")
        written.append(str(path.relative_to(target)))
    return written


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# --- tickets erase -----------------------------------------------------------------------------


def _tickets_erase(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.store import erase

    address = args.requester.strip()
    if "@" not in address:
        print(f"ticketgate: --requester {address!r} is not a mail address", file=sys.stderr)
        return EX_USAGE
    if not args.yes:
        print(
            f"ticketgate: erasing {address} cannot be undone; run again with --yes. Nothing changed.",
            file=sys.stderr,
        )
        return EX_USAGE
    prefix = settings.gateway.ticket_prefix
    with open_runtime(settings) as runtime:
        with unit_of_work(runtime.inbox.sessions) as session:
            done = erase.erase_person(session, address)
        # Files go after the commit: a blob left behind by a crash here is unreferenced, never the
        # other way round (a row pointing to a deleted file).
        removed = sum(runtime.deps.blobs.delete(sha) for sha in sorted(done.blobs))
        erase.compact(runtime.engine)
    refs = ", ".join(ticket_ref(prefix, t) for t in done.tickets) or "none"
    print(f"erased {address}: tickets {refs}")
    print(
        f"  {done.messages} messages, {done.originals} originals, {done.files} files "
        f"({removed} blobs), {done.notifications} notifications"
    )
    return 0


# --- undeliverable -----------------------------------------------------------------------------


def _undeliverable_list(args: argparse.Namespace, settings: Settings) -> int:
    with open_runtime(settings) as runtime, unit_of_work(runtime.inbox.sessions) as session:
        rows = [
            {"address": row.address, "reason": row.reason, "since": iso(row.since), "inbox_id": row.inbox_id}
            for row in staff_queries.undeliverable(session)
        ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("(no address is marked undeliverable)")
    for r in rows:
        print(f"{r['address']}  since {r['since']}  {r['reason']}")
    return 0


def _undeliverable_clear(args: argparse.Namespace, settings: Settings) -> int:
    with open_runtime(settings) as runtime, unit_of_work(runtime.inbox.sessions) as session:
        cleared = outbox_store.clear_undeliverable(session, args.address)
    if not cleared:
        print(f"ticketgate: {args.address} is not marked undeliverable", file=sys.stderr)
        return EX_NOTFOUND
    print(f"{args.address.strip().lower()}: cleared; it gets mail again")
    return 0


# --- helpers -----------------------------------------------------------------------------------
