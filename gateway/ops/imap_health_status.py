"""The IMAP health part of `ticketgate status` (SPEC §14): each mailbox's OAuth2 token expiry,
last refresh and last refresh error, and what the last reconciliation found. Kept apart from
gateway/ops/status.py and the status text in gateway/cli/ops.py: those call the two functions
below and add their result, nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def imap_health_json(health: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`status --json`'s `imap_health`: {mailbox: {token_expires_at, token_refreshed_at,
    token_error, token_error_at, reconciled_at, unreconciled, unreconciled_messages}}."""
    return {
        account: {
            "token_expires_at": _iso(row["token_expires_at"]),
            "token_refreshed_at": _iso(row["token_refreshed_at"]),
            "token_error": row["token_error"],
            "token_error_at": _iso(row["token_error_at"]),
            "reconciled_at": _iso(row["reconciled_at"]),
            "unreconciled": row["unreconciled"],
            "unreconciled_messages": row["unreconciled_detail"],
        }
        for account, row in sorted(health.items())
    }


def imap_health_lines(health: dict[str, dict[str, Any]]) -> list[str]:
    """The text lines, one block per mailbox that has a token or a reconciliation recorded."""
    if not health:
        return []
    lines = ["imap health:"]
    for account, row in sorted(health.items()):
        parts: list[str] = []
        if row["token_expires_at"] is not None or row["token_error"]:
            expiry = _iso(row["token_expires_at"]) or "no token yet"
            refreshed = _iso(row["token_refreshed_at"]) or "never"
            parts.append(f"token expires {expiry} (last refresh {refreshed})")
        if row["reconciled_at"] is not None:
            parts.append(
                f"{row['unreconciled'] or 0} unreconciled at {_iso(row['reconciled_at'])}"
                + (" (ticketgate imap reconcile --take)" if row["unreconciled"] else "")
            )
        lines.append(f"    {account}: {'; '.join(parts) or 'nothing recorded'}")
        if row["token_error"]:
            lines.append(f"        last refresh error {_iso(row['token_error_at'])}: {row['token_error']}")
        for message in row["unreconciled_detail"][:10]:
            lines.append(
                f"        {message.get('folder')}: {message.get('message_id')} ({message.get('why')})"
            )
    return lines


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None
