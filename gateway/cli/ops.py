"""The operator's commands: `status`, `process` and `db backup` (SPEC §10).

They live here rather than in gateway/cli/commands.py, which only names them (the command
table), so the table stays light and each command's code stays together.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from gateway.config import Settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.errors import TransientError
from gateway.ops.imap_health_status import imap_health_json, imap_health_lines
from gateway.ops.status import Snapshot, WriteCheck, check_writes, listening, read_engine, snapshot
from gateway.present import print_json

if TYPE_CHECKING:  # the pipeline is imported where mail is processed, not by every command
    from gateway.pipeline.stage_values import ProcessResult

EX_OK = 0
EX_FAILED = 1
EX_TEMPFAIL = 75
EARLIER_PER_INGEST = 100  # earlier pending rows one `ingest` takes up besides its own mail

_WRITABLE = WriteCheck(True)


def status_args(args: argparse.Namespace, settings: Settings) -> int:
    return status_command(settings, as_json=args.json)


def process_args(args: argparse.Namespace, settings: Settings) -> int:
    return process_command(settings)


def backup_args(args: argparse.Namespace, settings: Settings) -> int:
    return backup_command(settings, Path(args.path))


# --- status -----------------------------------------------------------------------------------


def status_command(settings: Settings, *, as_json: bool) -> int:
    smtp = settings.smtp
    is_listening = listening(smtp.host, smtp.port)
    engine = read_engine(settings.database.url, settings.database.reply_timeout)
    try:
        snap = snapshot(engine)
        writes = check_writes(engine, settings.metrics.listen)
        health = _imap_health(engine)
    except TransientError as exc:
        if as_json:
            print_json(
                {"intake": _intake(settings, is_listening), "database": {"ok": False, "error": str(exc)}}
            )
        else:
            print(_intake_line(settings, is_listening))
            print(f"database:      {exc}")
        return EX_TEMPFAIL
    finally:
        engine.dispose()
    if as_json:
        print_json(
            {**status_json(settings, snap, is_listening, writes), "imap_health": imap_health_json(health)}
        )
    else:
        print("\n".join([status_text(settings, snap, is_listening, writes), *imap_health_lines(health)]))
    return EX_OK if writes.ok else EX_TEMPFAIL


def _imap_health(engine: Any) -> dict[str, dict[str, Any]]:
    """Each mailbox's token and reconciliation state (gateway/ops/imap_health_status.py)."""
    from gateway.store.imap_health import read_imap_health

    return read_imap_health(engine)


def _intake(settings: Settings, is_listening: bool) -> dict[str, Any]:
    smtp = settings.smtp
    return {"listen": f"{smtp.host}:{smtp.port}", "lmtp": smtp.lmtp, "listening": is_listening}


def _intake_line(settings: Settings, is_listening: bool) -> str:
    smtp = settings.smtp
    what = "LMTP" if smtp.lmtp else "SMTP"
    state = "listening" if is_listening else "NOT listening (is `ticketgate serve` running?)"
    return f"intake:        {what} on {smtp.host}:{smtp.port}: {state}"


def _cannot_write(writes: WriteCheck) -> str:
    """The status line's words for a failed test write (SPEC §15)."""
    since = f" since {writes.since}" if writes.since else " (a test write failed just now)"
    return f"cannot write{since}: {writes.error}"


def status_json(
    settings: Settings, snap: Snapshot, is_listening: bool, writes: WriteCheck = _WRITABLE
) -> dict[str, Any]:
    intake = _intake(settings, is_listening) | {
        "writable": writes.ok,
        "cannot_write_since": writes.since,
        "write_error": writes.error,
    }
    return {
        "intake": intake,
        "database": {"ok": True, "writable": writes.ok},
        "inbox": {
            "by_state": snap.inbox,
            "pending": snap.pending,
            "oldest_pending_at": _iso(snap.oldest_pending_at),
            "oldest_pending_seconds": round(snap.oldest_pending_seconds(), 3),
        },
        "quarantine": snap.quarantined,
        "outbox": {
            "by_status": snap.outbox,
            "due_now": snap.outbox_due_now,
            "oldest_due_at": _iso(snap.oldest_due_at),
        },
        "undeliverable": [
            {"address": u["address"], "reason": u["reason"], "since": _iso(u["since"])}
            for u in snap.undeliverable
        ],
        "imap": _imap(settings, snap),
        "nodes": None
        if snap.nodes is None
        else [{k: _jsonable(v) for k, v in n.items()} for n in snap.nodes],
    }


def _imap(settings: Settings, snap: Snapshot) -> list[dict[str, Any]]:
    taken = {(row["account"], row["folder"]): row for row in snap.imap}
    found = []
    for account in settings.imap:
        row = taken.get((account.name, account.folder))
        poll = snap.imap_polls.get(account.name, {})
        found.append(
            {
                "mailbox": account.name,
                "folder": account.folder,
                "host": f"{account.host}:{account.port}",
                "last_taken_in_at": _iso(row["last_taken_in_at"]) if row else None,
                "last_uid": row["last_uid"] if row else None,
                "last_poll_at": _iso(poll["last_poll_at"]) if poll.get("last_poll_at") else None,
                "polled_by": poll.get("node"),
                "last_error": poll.get("last_error"),
                "last_error_at": _iso(poll["last_error_at"]) if poll.get("last_error_at") else None,
            }
        )
    return found


def status_text(
    settings: Settings, snap: Snapshot, is_listening: bool, writes: WriteCheck = _WRITABLE
) -> str:
    lines = [_intake_line(settings, is_listening)]
    if writes.ok:
        lines.append("database:      answering")
    else:
        lines.append(f"intake:        {_cannot_write(writes)}")
        lines.append("database:      answering reads, refusing writes (mail gets 451 until it takes them)")
    states = ", ".join(f"{n} {state}" for state, n in sorted(snap.inbox.items())) or "empty"
    oldest = (
        f"; oldest pending {_age(snap.oldest_pending_seconds())} old"
        f" (received {_iso(snap.oldest_pending_at)})"
        if snap.oldest_pending_at
        else "; nothing pending"
    )
    lines.append(f"inbox:         {states}{oldest}")
    lines.append(
        f"quarantine:    {snap.quarantined}" + (" (ticketgate quarantine list)" if snap.quarantined else "")
    )
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(snap.outbox.items())) or "empty"
    due = f"; {snap.outbox_due_now} due now"
    if snap.oldest_due_at is not None:
        due += f"; oldest waiting since {_iso(snap.oldest_due_at)}"
    lines.append(f"outbox:        {statuses}{due}")
    lines.append(f"undeliverable: {len(snap.undeliverable)} address(es)")
    lines.extend(f"    {u['address']}  since {_iso(u['since'])}  {u['reason']}" for u in snap.undeliverable)
    mailboxes = _imap(settings, snap)
    lines.append(f"imap:          {len(mailboxes) or 'no'} mailbox(es)")
    for box in mailboxes:
        last = box["last_taken_in_at"] or "never"
        polled = (
            f"last poll {box['last_poll_at']} by {box['polled_by']}"
            if box["last_poll_at"]
            else "never polled"
        )
        lines.append(
            f"    {box['mailbox']} ({box['folder']} on {box['host']}): {polled}; last mail taken in {last}"
        )
        if box["last_error"]:
            lines.append(f"        last error {box['last_error_at']}: {box['last_error']}")
    if snap.nodes is None:
        lines.append("nodes:         not recorded (this database has no node heartbeats)")
    else:
        lines.append(f"nodes:         {len(snap.nodes)}")
        lines.extend(_node_line(node) for node in snap.nodes)
    return "\n".join(lines)


# --- process ----------------------------------------------------------------------------------


def take_up_pending(
    runtime: Runtime, *, role: str, limit: int | None = None, exclude: Sequence[int] = ()
) -> list[ProcessResult]:
    """Process the rows left pending, earlier back-offs included (`InboxStore.due_now`), up to
    `limit`, in batches; each is tried once per run (a failure goes back with a new back-off)."""
    processor = runtime.processor(role)
    ids = runtime.inbox.due_now(limit=limit, exclude=exclude)
    results: list[ProcessResult] = []
    for start in range(0, len(ids), 16):
        results.extend(processor.process_ids(ids[start : start + 16]))
    return results


def describe(result: ProcessResult, prefix: str) -> str:
    """One result as `ingest` and `process` print it; a retry names its cause."""
    from gateway.pipeline.stage_values import Outcome

    if result.outcome is Outcome.RETRY:
        return f"stored, not processed yet; will retry: {result.detail}"
    ref = f" {prefix}-{result.ticket_id}" if result.ticket_id else ""
    return f"{result.outcome}{ref}" + (f" ({result.detail})" if result.detail else "")


def process_command(settings: Settings) -> int:
    from gateway.pipeline.stage_values import Outcome  # processing imports the pipeline anyway

    try:
        runtime = build_runtime(settings)
    except TransientError as exc:
        print(f"ticketgate: nothing processed: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    try:
        prefix = settings.gateway.ticket_prefix
        results = take_up_pending(runtime, role="process")
        for result in results:
            print(f"inbox {result.inbox_id}: {describe(result, prefix)}")
        sent = runtime.sender("process").send_due(limit=10_000)
        held = [r for r in sent if r.outage]
        code = EX_OK
        if held:
            print(f"notifications held up, will retry: {held[-1].detail}", file=sys.stderr)
            code = EX_TEMPFAIL
        if any(r.outcome is Outcome.RETRY for r in results):
            code = EX_TEMPFAIL
        engine = read_engine(settings.database.url, settings.database.reply_timeout)
        try:
            snap = snapshot(engine, details=False)
        finally:
            engine.dispose()
        delivered = sum(1 for r in sent if r.status == "sent")
        print(
            f"processed {len(results)} mail(s), sent {delivered} notification(s); "
            f"{snap.pending} mail(s) still pending, {snap.outbox_due_now} notification(s) due"
        )
        return code
    except TransientError as exc:
        print(f"ticketgate: stopped, try again later: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    finally:
        runtime.close()


# --- db backup --------------------------------------------------------------------------------


def backup_command(settings: Settings, target: Path) -> int:
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite":
        print(
            "ticketgate: db backup copies SQLite databases only; for PostgreSQL use its own tools, e.g.\n"
            f"    pg_dump --format=custom --file={target} '{url.render_as_string(hide_password=True)}'\n"
            "(restore with pg_restore --clean --dbname=…; docs/operations/index.md)",
            file=sys.stderr,
        )
        return EX_FAILED
    source = url.database or ""
    if source in ("", ":memory:") or not Path(source).is_file():
        print(f"ticketgate: no SQLite database file at {source!r}", file=sys.stderr)
        return EX_FAILED
    if target.exists():
        print(f"ticketgate: {target} exists; not overwriting it", file=sys.stderr)
        return EX_FAILED
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        # The backup API copies a consistent snapshot while the daemon keeps writing (WAL readers
        # do not block writers); the copy appears under its name only once complete.
        with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        print(f"ticketgate: backup failed: {exc}", file=sys.stderr)
        return EX_TEMPFAIL if isinstance(exc, sqlite3.OperationalError) else EX_FAILED
    print(f"backed up {source} to {target} ({target.stat().st_size} bytes)")
    return EX_OK


# --- helpers ----------------------------------------------------------------------------------


def _node_line(node: dict[str, Any]) -> str:
    """One `serve` run: `node-1 (host, pid 42): started …Z, last beat …Z` (`, stopped …Z` once stopped)."""
    line = (
        f"    {node.get('name')} ({node.get('host')}, pid {node.get('pid')}):"
        f" started {_iso(node.get('started_at'))}, last beat {_iso(node.get('last_beat'))}"
    )
    return line + (f", stopped {_iso(node['stopped_at'])}" if node.get("stopped_at") else "")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"
