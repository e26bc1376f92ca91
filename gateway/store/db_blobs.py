"""Screenshot and attachment bytes kept in the database (`storage.blobs = "database"`, the default
with PostgreSQL): every node sharing the database reaches them, and nothing else needs sharing.

Content-addressed like the folder store: the SHA-256 is the primary key, and a write is an
`INSERT … ON CONFLICT DO NOTHING`, so two nodes storing the same picture at once both succeed
(on PostgreSQL the second waits for the first's commit, then finds the row there).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gateway.store.blobs import BlobCorruptError, BlobNotFoundError, check_sha256
from gateway.store.db import make_session_factory, unit_of_work
from gateway.store.models import Blob, utcnow
from gateway.store.rows import execute

log = logging.getLogger(__name__)

_blobs = Blob.__table__
_DATA = select(_blobs.c.data).where(_blobs.c.sha256 == bindparam("sha"))
_EXISTS = select(_blobs.c.sha256).where(_blobs.c.sha256 == bindparam("sha"))
_SIZE = select(_blobs.c.size).where(_blobs.c.sha256 == bindparam("sha"))
_REPAIR = (
    _blobs.update()
    .where(_blobs.c.sha256 == bindparam("sha"))
    .values(data=bindparam("new_data"), size=bindparam("new_size"))
)
NAMES_PAGE = 500


class DatabaseBlobStore:
    """Blobs as rows of the `blobs` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert(_blobs).on_conflict_do_nothing(index_elements=[_blobs.c.sha256])

    def put(self, data: bytes, *, session: Session | None = None) -> str:
        """Store ``data`` in ``session``'s transaction (the rows naming it commit with it), or in a
        transaction of its own when none is given."""
        sha256 = hashlib.sha256(data).hexdigest()
        if session is not None:
            self._write(session, sha256, data)
        else:
            with unit_of_work(self.sessions) as own:
                self._write(own, sha256, data)
        return sha256

    def get(self, sha256: str, *, session: Session | None = None) -> bytes:
        params = {"sha": check_sha256(sha256)}
        if session is not None:
            data = execute(session, _DATA, params).scalar()
        else:
            with unit_of_work(self.sessions) as own:
                data = execute(own, _DATA, params).scalar()
        if data is None:
            raise BlobNotFoundError(sha256)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobCorruptError(f"blob {sha256} in the database does not match its hash")
        return bytes(data)

    def exists(self, sha256: str) -> bool:
        params = {"sha": check_sha256(sha256)}
        with unit_of_work(self.sessions) as session:
            return execute(session, _EXISTS, params).scalar() is not None

    def size(self, sha256: str, *, session: Session | None = None) -> int:
        params = {"sha": check_sha256(sha256)}
        if session is not None:
            size = execute(session, _SIZE, params).scalar()
        else:
            with unit_of_work(self.sessions) as own:
                size = execute(own, _SIZE, params).scalar()
        if size is None:
            raise BlobNotFoundError(sha256)
        return int(size)

    def delete(self, sha256: str) -> bool:
        """Remove the row under ``sha256`` (an erase request); False when there was none."""
        params = {"sha": check_sha256(sha256)}
        with unit_of_work(self.sessions) as session:
            gone = session.execute(_blobs.delete().where(_blobs.c.sha256 == params["sha"]))
            return bool(gone.rowcount)

    def names(self) -> Iterator[str]:
        """Every stored blob's SHA-256, in order, a page per transaction (a migration may run long)."""
        after = ""
        while True:
            with unit_of_work(self.sessions) as session:
                page = list(
                    session.scalars(
                        select(_blobs.c.sha256)
                        .where(_blobs.c.sha256 > after)
                        .order_by(_blobs.c.sha256)
                        .limit(NAMES_PAGE)
                    )
                )
            if not page:
                return
            yield from page
            after = page[-1]

    def _write(self, session: Session, sha256: str, data: bytes) -> None:
        # Asking first spares sending the bytes again for a picture already stored (resends). The
        # stored copy is checked, not just found: one whose bytes no longer hash to its name is
        # written again, so the same picture arriving again repairs it (SPEC §15).
        stored = execute(session, _DATA, {"sha": sha256}).scalar()
        if stored is None:
            execute(
                session,
                self._insert,
                {"sha256": sha256, "data": data, "size": len(data), "created_at": utcnow()},
            )
        elif hashlib.sha256(stored).hexdigest() != sha256:
            log.warning(
                "blob %s in the database was damaged (it no longer matches its SHA-256): written again",
                sha256,
            )
            execute(session, _REPAIR, {"sha": sha256, "new_data": data, "new_size": len(data)})
