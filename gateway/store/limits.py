"""Counts the abuse limits read from the store (SPEC §11), the same on SQLite and PostgreSQL.

They are counted from the tickets themselves rather than kept in a counter of their own, so a
limit holds across restarts and across nodes that share the database.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from gateway.store.models import Ticket
from gateway.store.rows import execute

_tickets = Ticket.__table__
# Uses ix_tickets_requester_lower_created (migration 0005).
_TICKETS_OPENED = (
    select(func.count())
    .select_from(_tickets)
    .where(
        func.lower(_tickets.c.requester_address) == bindparam("address"),
        _tickets.c.created_at > bindparam("since"),
        _tickets.c.created_at <= bindparam("until"),
    )
)


def tickets_opened_by(session: Session, address: str, *, since: datetime, until: datetime) -> int:
    """How many tickets `address` opened after `since` and up to `until` (compared case-insensitively)."""
    params = {"address": address.strip().lower(), "since": since, "until": until}
    return int(execute(session, _TICKETS_OPENED, params).scalar() or 0)
