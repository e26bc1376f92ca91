"""Each IMAP account's OAuth2 token state and last reconciliation (table `imap_health`), written by
the node that polls or reconciles and read by `ticketgate status` on any node (SPEC §14).

Writing is best effort: a failure is logged at DEBUG and otherwise ignored, so a database hiccup
never stops intake or a reconciliation (both report their own faults)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import TransientError
from gateway.store.db import make_session_factory, unit_of_work
from gateway.store.models import ImapHealth, InboxItem, utcnow

log = logging.getLogger(__name__)


class ImapHealthStore:
    def __init__(self, engine: Engine) -> None:
        self.sessions = make_session_factory(engine)

    def record_token(
        self, account: str, *, expires_at: datetime | None, refreshed: bool, error: str | None
    ) -> None:
        """A refresh that worked (`expires_at`, error cleared) or failed (`error`, expiry kept)."""

        def change(row: ImapHealth) -> None:
            now = utcnow()
            if error is None:
                row.token_expires_at, row.token_error, row.token_error_at = expires_at, None, None
                if refreshed:
                    row.token_refreshed_at = now
            else:
                row.token_error, row.token_error_at = error[:2000], now

        self._write(account, change)

    def token_recorder(self, account: str) -> Callable[[Any], None]:
        """For the poller's token source: records each `TokenState` (expires_at, refreshed, error)."""

        def record(state: Any) -> None:
            self.record_token(
                account, expires_at=state.expires_at, refreshed=state.refreshed, error=state.error
            )

        return record

    def record_reconcile(self, account: str, found: Sequence[dict[str, Any]]) -> None:
        def change(row: ImapHealth) -> None:
            row.reconciled_at = utcnow()
            row.unreconciled = len(found)
            row.unreconciled_detail = json.dumps(list(found)[:200])

        self._write(account, change)

    def _write(self, account: str, change: Any) -> None:
        try:
            with unit_of_work(self.sessions) as session:
                row = session.get(ImapHealth, account)
                if row is None:
                    row = ImapHealth(account=account)
                    session.add(row)
                change(row)
        except (TransientError, SQLAlchemyError) as exc:
            log.debug("imap %s: could not record its health: %s", account, exc)


def read_imap_health(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every account's row as a dict (datetimes aware, detail decoded); {} before migration 0010."""
    try:
        with engine.connect() as connection:
            rows = list(connection.execute(select(ImapHealth)))
    except SQLAlchemyError as exc:
        log.debug("imap health not readable: %s", exc)
        return {}
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        found[row.account] = {
            "token_expires_at": row.token_expires_at,
            "token_refreshed_at": row.token_refreshed_at,
            "token_error": row.token_error,
            "token_error_at": row.token_error_at,
            "reconciled_at": row.reconciled_at,
            "unreconciled": row.unreconciled,
            "unreconciled_detail": json.loads(row.unreconciled_detail or "[]"),
        }
    return found


def held_message_ids(engine: Engine, message_ids: Sequence[str]) -> set[str]:
    """Which of `message_ids` the inbox holds, whatever the row's state: processed rows by their
    recorded Message-ID, rows not yet processed (pending, processing, quarantined) by reading the
    Message-ID header of their raw mail, since only processing records it."""
    wanted = set(message_ids)
    held: set[str] = set()
    if not wanted:
        return held
    from gateway.mail.header_fields import message_id
    from gateway.mail.rawmail import message_id_of

    with engine.connect() as connection:
        ordered = sorted(wanted)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            held.update(
                connection.execute(
                    select(InboxItem.message_id).where(InboxItem.message_id.in_(chunk))
                ).scalars()
            )
        unprocessed = connection.execute(
            select(InboxItem.raw).where(InboxItem.message_id.is_(None), InboxItem.state != "done")
        ).scalars()
        for raw in unprocessed:
            found = message_id(message_id_of(raw))
            if found in wanted:
                held.add(found)
    return held
