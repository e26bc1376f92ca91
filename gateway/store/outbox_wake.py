"""Waking the outbox sender when notifications are queued, instead of leaving them to its poll.

A ticket and its acknowledgement's outbox row are committed some 12-14 ms after the end of DATA,
but a sender that only looked once a second sent the acknowledgement half a second later on
average (bench/ack_latency.py). Three wake-ups now reach it, each fired only once the rows are
committed, so the sender never looks before it can see them:

- in the process, and from worker processes to the daemon: the daemon and each worker process
  register `on_commit` on their session factory; it calls their wake-up (gateway/daemon/wake.py's
  semaphore, shared with the daemon's sender) after each commit that queued a row;
- across nodes, on PostgreSQL: `queued` sends `NOTIFY ticketgate_outbox` inside the transaction
  (PostgreSQL delivers it at commit, drops it on rollback), and every `serve` runs
  `listen_for_queued`, which wakes its sender on each. Commands that queue mail (`tickets update`,
  `outbox retry`) reach the daemons this way too.

The sender's poll (`notifications.poll_seconds`) remains for what nothing announces: retries
coming due, the claims of a dead node, and mail a command queued on SQLite.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.store.rows import connection as transaction_connection
from gateway.store.rows import execute

log = logging.getLogger(__name__)

CHANNEL = "ticketgate_outbox"
_NOTIFY = text(f"NOTIFY {CHANNEL}")
_QUEUED = "ticketgate.outbox_queued"  # session.info: this transaction queued outbox rows
_NOTIFIED = "ticketgate.outbox_notified"  # session.info: the (sub)transaction that sent NOTIFY
LISTEN_POLL_SECONDS = 0.5  # how often the listener looks at its stop flag
RECONNECT_SECONDS = 5.0
LIVENESS_SECONDS = 30.0  # how often the listener asks the server whether its connection still works


def queued(session: Session) -> None:
    """Outbox rows were made due in `session`'s transaction: wake the senders once it commits.

    One NOTIFY per savepoint, not per row (PostgreSQL folds equal ones of a transaction into one
    anyway): a mail whose savepoint is rolled back takes its NOTIFY with it, and the next mail of
    the batch sends its own."""
    session.info[_QUEUED] = True
    if session.get_bind().dialect.name != "postgresql":
        return
    # The savepoints are the connection's (gateway/store/db.py `savepoint`), not the session's: the
    # session's nested transaction is always None, so keying on it sent one NOTIFY per transaction,
    # and a batch whose mail that sent it was rolled back woke nobody for the others.
    bound = transaction_connection(session)
    innermost = bound.get_nested_transaction() or bound.get_transaction()
    if session.info.get(_NOTIFIED) is not innermost:
        execute(session, _NOTIFY)
        session.info[_NOTIFIED] = innermost


def on_commit(sessions: sessionmaker[Session], wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` after each commit of a session from `sessions` that queued outbox rows; the
    function returned undoes it."""

    def after_commit(session: Session) -> None:
        if session.info.pop(_QUEUED, False):
            wake()

    event.listen(sessions, "after_commit", after_commit)
    return lambda: event.remove(sessions, "after_commit", after_commit)


def listen_for_queued(
    engine: Engine, wake: Callable[[], None], stop: threading.Event, *, reply_timeout: float = 15.0
) -> None:
    """PostgreSQL: `LISTEN ticketgate_outbox` on a connection of its own and call `wake` on each
    notification, until `stop`. A lost connection is made again after a pause (and `wake` called
    then, for what was queued meanwhile); the sender's poll covers the gap.

    A connection can go deaf without closing (a route or middlebox that swallows bytes): waiting
    for notifications cannot tell, so every `LIVENESS_SECONDS` the listener asks `SELECT 1`, which
    fails after `reply_timeout` (`database.reply_timeout`) on such a connection, and listens anew."""
    import psycopg  # only with PostgreSQL, whose driver this is

    from gateway.store.pg_connection import bounded_connection_class, tcp_settings

    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection_class = bounded_connection_class(reply_timeout)
    down: str | None = None
    while not stop.is_set():
        try:
            with connection_class.connect(
                conninfo, autocommit=True, connect_timeout=10, **tcp_settings(reply_timeout)
            ) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                if down is not None:
                    log.info("listening for queued notifications again (was: %s)", down)
                    down = None
                wake()
                checked = time.monotonic()
                while not stop.is_set():
                    for _ in connection.notifies(timeout=LISTEN_POLL_SECONDS, stop_after=1):
                        wake()
                    if time.monotonic() - checked >= LIVENESS_SECONDS:
                        connection.execute("SELECT 1")
                        checked = time.monotonic()
        except psycopg.Error as exc:
            if down is None:
                log.warning("not listening for queued notifications (the sender polls meanwhile): %s", exc)
            down = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            stop.wait(RECONNECT_SECONDS)
