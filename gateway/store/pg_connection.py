"""PostgreSQL connections whose every wait for the server has an end (SPEC §15: moving again within
60 s once the database is back).

libpq bounds the connect (`connect_timeout`) and the server bounds a statement it is running
(`statement_timeout`), but nothing bounds a client waiting for an answer that will never come: a
request whose bytes a firewall, a NAT table or a failing route swallowed while the TCP connection
stays up. Such a wait lasted forever (the fault suite's `proxy-blackhole`): the inbox writer, the
sender and the processors sat in the pool's pre-ping `SELECT 1` long after the route was back, and
`serve` did not stop on SIGTERM. TCP keepalives do not help there — a middlebox that still holds
the connection acknowledges them — and `tcp_user_timeout` only sees data the peer never
acknowledged.

So the daemon's connections wait at most `database.reply_timeout` seconds for any answer (a
query, a commit, a rollback, a ping). psycopg routes every wait of a connection through
`Connection.wait`, which takes a timeout; this class gives it one where the caller gave none.
When it passes, the connection is closed (its state is unknown: the request may or may not have
reached the server) and the wait fails as a lost connection does, so SQLAlchemy's pool throws the
connection away and the daemon's ordinary "try again later" path takes over: `451` to an SMTP
client, a transaction retried by the processor, a sender's result kept until the store answers.
Closing the socket is also what makes the server roll back a transaction whose COMMIT was
swallowed, releasing its row locks.

A wait whose caller gave a timeout (`notifies(timeout=…)` on the LISTEN connection) keeps it.
Only the daemon's own connections (serve, its worker processes, `status`) are bounded: commands
such as `db upgrade` or an export may legitimately run one long statement.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import psycopg
from psycopg import errors

log = logging.getLogger(__name__)

RV = TypeVar("RV")

# libpq's TCP settings for the daemon's connections: a peer that vanished without a word (a
# host powered off, a route gone) is found within about a minute even on a connection that sits
# idle in the pool or waits for LISTEN notifications, where no request is outstanding.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


class NoAnswer(psycopg.OperationalError):
    """The server did not answer within the bound; the connection was closed."""


def bounded_connection_class(reply_timeout: float) -> type[psycopg.Connection[Any]]:
    """A psycopg connection class whose waits without a timeout of their own last at most
    `reply_timeout` seconds."""

    class BoundedConnection(psycopg.Connection[Any]):
        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if timeout is not None:
                return super().wait(gen, interval=interval, timeout=timeout)
            try:
                return super().wait(gen, interval=interval, timeout=reply_timeout)
            except errors._WaitTimeout:  # psycopg's own signal that the timeout passed
                # The request may or may not have reached the server: nothing more can be trusted
                # on this connection. Closing it makes the pool discard it (`broken`) and the
                # server roll back whatever transaction it had open.
                log.warning(
                    "PostgreSQL did not answer within %g s (database.reply_timeout): connection closed",
                    reply_timeout,
                )
                self.pgconn.finish()
                raise NoAnswer(
                    f"the database did not answer within {reply_timeout:g} s (database.reply_timeout); "
                    "the connection was closed"
                ) from None

    BoundedConnection.__name__ = BoundedConnection.__qualname__ = "BoundedConnection"
    return BoundedConnection


def tcp_settings(reply_timeout: float) -> dict[str, int]:
    """Keepalives, and `tcp_user_timeout` (sent data left unacknowledged that long means the peer
    is gone) at the same bound as an answer."""
    return {**KEEPALIVES, "tcp_user_timeout": int(reply_timeout * 1000)}
