"""`ticketgate inbox list|show|release` (SPEC §10): every accepted mail and what became of it, so
nothing accepted is invisible, and the way to turn a `spam` or `flood` mail into what it would
have been. Kept apart from gateway/cli/main.py, which only registers these commands."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.present import iso, print_json, ticket_ref
from gateway.store.db import unit_of_work
from gateway.store.inbox_outcomes import (
    OUTCOMES,
    RELEASABLE,
    InboxEntry,
    get_entry,
    list_entries,
    release,
)

EX_NOTFOUND = 1
EX_NOT_RELEASABLE = 65  # EX_DATAERR: the mail is there, but its outcome cannot be released
EX_USAGE = 64

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def entry_json(entry: InboxEntry, prefix: str) -> dict[str, Any]:
    """The stable `inbox list --json` object (docs/staff/json-output.md)."""
    return {
        "id": entry.id,
        "received_at": iso(entry.received_at),
        "envelope_from": entry.envelope_from,
        "envelope_to": list(entry.envelope_to),
        "message_id": entry.message_id,
        "subject": entry.subject,
        "outcome": entry.outcome,
        "ticket": ticket_ref(prefix, entry.ticket_id) if entry.ticket_id is not None else None,
        "reason": entry.reason,
        "source": entry.source,
        "released_at": iso(entry.released_at),
    }


def parse_since(text: str, now: datetime) -> datetime | None:
    """`2026-11-25`, `2026-11-25T10:00` (UTC unless it says), or a span ago (`30m`, `2h`, `7d`); else None."""
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2).lower()]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- the commands -----------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    outcome = args.outcome.strip().lower().replace("-", "_") if args.outcome else None
    if outcome is not None and outcome not in OUTCOMES:
        print(f"ticketgate: unknown outcome {args.outcome!r}; one of: {', '.join(OUTCOMES)}", file=sys.stderr)
        return EX_USAGE
    since = None
    if args.since:
        since = parse_since(args.since, datetime.now(UTC))
        if since is None:
            print(
                f"ticketgate: --since {args.since!r} is neither an ISO date/time nor a span like 2h or 7d",
                file=sys.stderr,
            )
            return EX_USAGE
    settings = load_settings(args.config)
    prefix = settings.gateway.ticket_prefix
    runtime = build_runtime(settings)
    try:
        with unit_of_work(runtime.inbox.sessions) as session:
            entries = list_entries(session, outcome=outcome, since=since)
    finally:
        runtime.close()
    if args.json:
        print_json([entry_json(entry, prefix) for entry in entries])
        return 0
    print(_table(entries, prefix))
    return 0


def _show(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    runtime = build_runtime(settings)
    try:
        with unit_of_work(runtime.inbox.sessions) as session:
            found = get_entry(session, args.id)
    finally:
        runtime.close()
    if found is None:
        print(f"ticketgate: no inbox item {args.id}", file=sys.stderr)
        return EX_NOTFOUND
    entry, raw = found
    if args.raw:
        sys.stdout.buffer.write(raw)
        return 0
    prefix = settings.gateway.ticket_prefix
    if args.json:
        print_json(entry_json(entry, prefix))
        return 0
    ticket = ticket_ref(prefix, entry.ticket_id) if entry.ticket_id is not None else "-"
    print(f"inbox {entry.id}, received {iso(entry.received_at)} by {entry.source}, {entry.size} bytes")
    print(f"envelope: from {entry.envelope_from or '<>'} to {', '.join(entry.envelope_to) or '-'}")
    print(f"message-id: {entry.message_id or '-'}")
    print(f"subject: {entry.subject or '-'}")
    print(f"outcome: {entry.outcome}   ticket: {ticket}   attempts: {entry.attempts}")
    if entry.reason:
        print(f"reason: {entry.reason}")
    if entry.released_at is not None:
        print(f"released: {iso(entry.released_at)}")
    if entry.outcome in RELEASABLE:
        print(f"(`ticketgate inbox release {entry.id}` processes it as if it were not {entry.outcome})")
    print(f"--- original ({entry.size} bytes; `--raw` prints it whole) ---")
    print(raw[:2000].decode("utf-8", "replace"))
    return 0


def _release(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    prefix = settings.gateway.ticket_prefix
    runtime = build_runtime(settings)
    try:
        # Built (the pipeline imported) before the mail is pending again, so a running daemon's
        # worker has no more time to take it first than the moment between two statements.
        processor = runtime.processor("release")
        with unit_of_work(runtime.inbox.sessions) as session:
            done = release(session, args.id)
        if done.outcome is None:
            print(f"ticketgate: no inbox item {args.id}", file=sys.stderr)
            return EX_NOTFOUND
        if not done.released:
            print(
                f"ticketgate: inbox {args.id} is {done.outcome}; only {' or '.join(RELEASABLE)} "
                "mail can be released",
                file=sys.stderr,
            )
            return EX_NOT_RELEASABLE
        results = processor.process_ids([args.id])
        # The customer hears back at once, daemon or not; a relay that is down only delays this.
        runtime.sender("release").send_due()
    finally:
        runtime.close()
    if not results:
        print(f"inbox {args.id}: released from {done.outcome}; being processed by another worker")
        return 0
    (result,) = results
    ref = f" {ticket_ref(prefix, result.ticket_id)}" if result.ticket_id else ""
    print(f"inbox {args.id}: released from {done.outcome}: {result.outcome}{ref} ({result.detail})")
    return 0


# --- output -----------------------------------------------------------------------------------


def _table(entries: list[InboxEntry], prefix: str) -> str:
    if not entries:
        return "(no accepted mail matches)"
    rows = [
        (
            str(e.id),
            f"{e.received_at:%Y-%m-%d %H:%M}",
            e.outcome,
            ticket_ref(prefix, e.ticket_id) if e.ticket_id is not None else "-",
            _clip(e.envelope_from or "<>", 32),
            _clip(e.subject or "-", 50),
        )
        for e in entries
    ]
    header = ("ID", "Received", "Outcome", "Ticket", "Envelope from", "Subject")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(header)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    for entry, row in zip(entries, rows, strict=True):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if entry.outcome in ("spam", "flood", "dropped", "my_tickets", "quarantine") and entry.reason:
            lines.append(f"    {_clip(entry.reason, 120)}")
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
