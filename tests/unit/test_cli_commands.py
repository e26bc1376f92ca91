"""The command table imports no command's code: `--help` and a command's arguments are parsed
without SQLAlchemy, and only the chosen command's module is imported. The value lists its help
names are the store's own."""

from __future__ import annotations

import subprocess
import sys

from gateway.cli.commands import BLOB_STORES, INBOX_OUTCOMES, OUTBOX_STATUSES
from gateway.config import BlobStoreKind
from gateway.store.inbox_outcomes import OUTCOMES
from gateway.store.outbox import STATUSES


def test_the_help_names_the_stores_own_values() -> None:
    assert OUTBOX_STATUSES == STATUSES
    assert INBOX_OUTCOMES == OUTCOMES
    assert tuple(kind.value for kind in BlobStoreKind) == BLOB_STORES


def _modules_after(*argv: str) -> set[str]:
    code = (
        "import sys\n"
        "from gateway.cli.main import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return set(done.stderr.strip().splitlines()[-1].split())


def test_help_imports_no_sqlalchemy_nor_any_command() -> None:
    loaded = _modules_after("--help")
    assert not {name for name in loaded if name.startswith(("sqlalchemy", "alembic", "jinja2"))}
    assert not {
        name
        for name in loaded
        if name.startswith("gateway.cli.")
        and name
        not in (
            "gateway.cli.main",
            "gateway.cli.commands",
            "gateway.cli.control_client",
            "gateway.cli.explain",
            "gateway.cli.init",
        )
    }  # fmt: skip (these two: standard library only)


def test_check_config_imports_no_sqlalchemy(tmp_path: object) -> None:
    loaded = _modules_after("check-config")
    assert "gateway.cli.settings" in loaded  # the command ran
    assert not {name for name in loaded if name.startswith(("sqlalchemy", "alembic", "jinja2"))}
