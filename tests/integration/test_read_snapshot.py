"""`tickets show` and `tickets list` read a ticket in several statements; on PostgreSQL they do so
in one REPEATABLE READ snapshot (`unit_of_work(snapshot=True)`), so a commit landing between two of
their statements is seen whole or not at all. (SQLite's transactions are one at a time already.)"""

from __future__ import annotations

from sqlalchemy import text

from gateway.store.db import make_engine, make_session_factory, unit_of_work
from gateway.store.schema import upgrade


def test_a_snapshot_read_does_not_see_a_commit_made_after_its_first_statement(fresh_postgres: str) -> None:
    engine = make_engine(fresh_postgres)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE probe (value integer)"))
        setup.execute(text("INSERT INTO probe VALUES (1)"))

    def read(session: object) -> int:
        return int(session.execute(text("SELECT value FROM probe")).scalar_one())  # type: ignore[attr-defined]

    for snapshot, second_read in ((True, 1), (False, 2)):
        with engine.begin() as reset:
            reset.execute(text("UPDATE probe SET value = 1"))
        with unit_of_work(sessions, snapshot=snapshot) as session:
            assert read(session) == 1
            with engine.begin() as other:  # another process commits a change meanwhile
                other.execute(text("UPDATE probe SET value = 2"))
            assert read(session) == second_read  # the snapshot still sees the first state
    engine.dispose()
