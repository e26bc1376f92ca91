"""The schema check every command makes compares the database with `HEADS`, a constant, instead of
loading Alembic's migration scripts: it must name exactly the heads those scripts have."""

from __future__ import annotations

import subprocess
import sys

from gateway.store.schema import HEADS, head_revisions


def test_heads_constant_is_alembics_head() -> None:
    # A new migration in gateway/store/migrations/versions fails here until HEADS names it.
    assert head_revisions() == HEADS


def test_the_schema_check_loads_no_alembic() -> None:
    # Given a fresh process that builds a runtime on a database at the head revision
    code = (
        "import sys, tempfile, pathlib\n"
        "from gateway.store.db import make_engine\n"
        "from gateway.store.schema import upgrade\n"
        "from gateway.daemon.runtime import ensure_schema\n"
        "engine = make_engine(f'sqlite:///{pathlib.Path(tempfile.mkdtemp()) / \"t.db\"}')\n"
        "upgrade(engine)\n"
        "for name in [m for m in sys.modules if m.startswith(('alembic', 'mako'))]:\n"
        "    del sys.modules[name]\n"
        "ensure_schema(engine)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('alembic', 'mako'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # Then checking it imported neither Alembic nor Mako (nor read a migration script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
