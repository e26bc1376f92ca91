"""What the inbox's and the outbox's claims share: taking the rows they picked.

Both claim in two statements built once (gateway/store/inbox.py `claim`, gateway/store/outbox.py
`claim_due`): one picks the ids of due rows (on PostgreSQL locked with `SKIP LOCKED`), one UPDATE
takes those still due for the claimer, with RETURNING what the caller needs. A row claimed by
someone else between the two fails the UPDATE's condition and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Update
from sqlalchemy.orm import Session

from gateway.store.rows import execute


def take_picked(
    session: Session,
    take: Update,
    params: Mapping[str, object],
    *,
    candidates: Sequence[int],
    worker: str,
    node: int | None,
    until: datetime,
) -> list[Row[Any]]:
    """Run the `take` UPDATE … RETURNING for `candidates` (with the pick's own `params`): the rows
    this claimer now holds, in the order they were picked (RETURNING gives no order)."""
    rows = execute(
        session,
        take,
        {**params, "candidates": list(candidates), "worker": worker, "node": node, "until": until},
    )
    by_id = {row.id: row for row in rows}
    return [by_id[row_id] for row_id in candidates if row_id in by_id]
