"""Migration 0005 (nodes, claims' node, blobs) on SQLite and PostgreSQL: a database at 0004 with
mail in it upgrades in place, keeps its rows, and matches the models afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from gateway.store.db import make_engine
from gateway.store.models import Base
from gateway.store.schema import current_revisions, head_revisions, upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = make_engine(database_url)
    yield built
    built.dispose()


def test_a_database_at_0004_upgrades_with_its_mail_kept(engine: Engine) -> None:
    upgrade(engine, "0004_lower_idx")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO inbox (received_at, source, mail_from, rcpt_tos, raw, size, state, attempts, "
                "next_attempt_at, lease_until, claimed_by) VALUES (CURRENT_TIMESTAMP, 'smtp', 'a@b.example', "
                "'[]', :raw, 3, 'processing', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'old:worker')"
            ),
            {"raw": b"abc"},
        )

    upgrade(engine)

    assert len(head_revisions()) == 1  # one line of migrations
    assert current_revisions(engine) == head_revisions()
    tables = set(inspect(engine).get_table_names())
    assert {"nodes", "blobs"} <= tables
    with engine.connect() as connection:
        row = connection.execute(text("SELECT raw, claimed_by, claimed_node FROM inbox")).one()
    assert (bytes(row.raw), row.claimed_by, row.claimed_node) == (b"abc", "old:worker", None)
    for table in ("inbox", "outbox"):
        assert "claimed_node" in {column["name"] for column in inspect(engine).get_columns(table)}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_the_migrations_make_exactly_the_models_schema(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # SQLite's reflection cannot see expression indexes (lower(address)): alembic reports the
    # models' as missing there, which says nothing about migration 0005.
    expression_indexes = {"ix_messages_author_lower", "ix_outbox_to_lower_template_created"}
    assert [
        difference
        for difference in differences
        if not (difference[0] == "add_index" and difference[1].name in expression_indexes)
    ] == []
