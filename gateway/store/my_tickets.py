"""A customer's own tickets, as the `my_tickets` mail lists them (SPEC §12): open ones first, then
newest first. Matched on the requester address, case-insensitively (the index the flood limit uses)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gateway.domain import DONE_STATUSES
from gateway.store.models import Ticket


def requester_tickets(session: Session, address: str, *, limit: int) -> tuple[Sequence[Ticket], int]:
    """Up to `limit` tickets `address` opened, open ones first and newest first within each, and how
    many there are in all."""
    mine = func.lower(Ticket.requester_address) == address.strip().lower()
    done_last = case((Ticket.status.in_(DONE_STATUSES), 1), else_=0)
    query = select(Ticket).where(mine).order_by(done_last, Ticket.created_at.desc(), Ticket.id.desc())
    tickets = session.scalars(query.limit(limit)).all()
    total = len(tickets)
    if total == limit:
        total = int(session.scalar(select(func.count()).select_from(Ticket).where(mine)) or 0)
    return tickets, total
