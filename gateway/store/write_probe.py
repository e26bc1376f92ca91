"""A test write: can the database take a write now, the size of a small mail?

Intake knows it cannot write when a mail fails to commit (`451`). Knowing when it can again must
not wait for the next mail: a load balancer that took the node out on `/readyz` sends none. So the
daemon's inbox writer, while failing, and `ticketgate status` try this write: a row of
`PROBE_BYTES` random bytes (random, so PostgreSQL cannot compress it to nothing) inserted into
the `blobs` table and deleted again in the same transaction, then committed. Nothing is left
behind, but the commit writes the pages (SQLite's WAL, PostgreSQL's WAL) as a mail's would, so a
full disk or a database refusing writes fails it the same way.
"""

from __future__ import annotations

import os
import secrets

from sqlalchemy.orm import Session, sessionmaker

from gateway.store.db import unit_of_work
from gateway.store.models import Blob, utcnow
from gateway.store.rows import execute

PROBE_BYTES = 16 * 1024  # a small mail with its headers; the WAL pages a commit of one writes

_blobs = Blob.__table__


def probe_write(sessions: sessionmaker[Session]) -> None:
    """Commit a write that leaves nothing behind; TransientError naming the fault when it fails."""
    name = secrets.token_hex(32)  # a SHA-256-shaped name no content will have
    with unit_of_work(sessions) as session:
        execute(
            session,
            _blobs.insert(),
            {"sha256": name, "data": os.urandom(PROBE_BYTES), "size": PROBE_BYTES, "created_at": utcnow()},
        )
        execute(session, _blobs.delete().where(_blobs.c.sha256 == name))
