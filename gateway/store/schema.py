"""Schema migrations (Alembic), run by `ticketgate db upgrade` and by `serve` on a fresh database.

Every command checks the database's revision before it runs; loading Alembic and its migration
scripts for that cost each command ~50 ms and Alembic's and Mako's imports (9 % of a command's
import time), so the check compares the `alembic_version` table, read with one plain query,
with `HEADS`, the revisions this code was built for. tests/unit/test_schema_head.py holds `HEADS`
to Alembic's own heads: a new migration fails that test until `HEADS` names it. Alembic is
imported only to migrate.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The head revision(s) of migrations/versions: what `ensure_schema` expects the database to be at.
HEADS = frozenset({"0010_imap_health"})
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revisions() -> frozenset[str]:
    """The heads of the migration scripts, as Alembic reads them (a set: independent migrations
    may sit side by side). `HEADS` is what the code checks against; this is for tests and tools."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(_alembic_config()).get_heads())


def current_revisions(engine: Engine) -> frozenset[str]:
    """The revisions the database is at; empty for a fresh database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return frozenset()
        return frozenset(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply every migration up to `revision`."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision_autogenerate(engine: Engine, message: str) -> None:
    """Developer helper: write a new migration from the difference between models and `engine`."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
