"""`ticketgate imap reconcile [--take] [--days N] [--json]` (SPEC §14): compare each `[[imap]]`
mailbox's watched and processed folders with the inbox by Message-ID, report what intake missed,
and with `--take` take it in (gateway/intake/imap_reconcile.py does the work).

Exit codes: 0 nothing left unreconciled (or all of it taken in); 1 unreconciled mail found and not
taken in; 75 a mailbox could not be reached or read (the others are still reported)."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.config import Settings

EX_OK = 0
EX_FOUND = 1
EX_TEMPFAIL = 75


def reconcile_args(args: argparse.Namespace, settings: Settings) -> int:
    """The command's handler (its arguments are defined in gateway/cli/commands.py)."""
    return reconcile_command(settings, take=args.take, days=args.days, as_json=args.json)


def reconcile_command(settings: Settings, *, take: bool, days: int | None, as_json: bool) -> int:
    # Imported here: IMAP and the store are needed by this command only (CLI start-up stays light).
    from gateway.daemon.runtime import open_runtime
    from gateway.intake.imap import ImapPoller
    from gateway.intake.imap_reconcile import DEFAULT_LOOKBACK_DAYS, Reconciler
    from gateway.present import print_json
    from gateway.store.imap_state import ImapStateStore

    if not settings.imap:
        if as_json:
            print_json({"mailboxes": []})
        else:
            print("imap: no [[imap]] mailboxes configured")
        return EX_OK
    minutes = settings.processing.imap_reconcile_minutes or 10
    with open_runtime(settings) as runtime:
        state = ImapStateStore(runtime.engine)
        size = settings.smtp.max_message_size

        def connect(account: Any) -> Any:
            return ImapPoller(account, state, max_message_size=size).connect()

        reconciler = Reconciler(
            state,
            minutes=minutes,
            connect=connect,
            lookback_days=DEFAULT_LOOKBACK_DAYS if days is None else days,
        )
        reports = reconciler.run(settings.imap, take=take)
    if as_json:
        print_json({"mailboxes": [report.as_json() for report in reports]})
    else:
        for report in reports:
            print(_text(report, take=take))
    if any(report.error for report in reports):
        return EX_TEMPFAIL
    if not take and any(report.found for report in reports):
        return EX_FOUND
    return EX_OK


def _text(report: Any, *, take: bool) -> str:
    if report.error:
        return f"{report.mailbox}: not reconciled: {report.error}"
    if not report.found:
        head = f"{report.mailbox}: reconciled, nothing missing"
    elif take:
        head = (
            f"{report.mailbox}: {len(report.found)} unreconciled, {len(report.taken_in)} taken into the "
            f"inbox, {report.moved} moved to the processed folder"
        )
    else:
        head = f"{report.mailbox}: {len(report.found)} unreconciled (take them in with --take)"
    lines = [head]
    lines.extend(f"    {item.folder} UID {item.uid}: {item.message_id}: {item.why}" for item in report.found)
    if report.no_message_id:
        lines.append(f"    {report.no_message_id} message(s) without a Message-ID (not compared)")
    return "\n".join(lines)
