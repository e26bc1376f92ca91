"""The command table imports no command's code: `--help` and a command's arguments are parsed
without SQLAlchemy, and only the chosen command's module is imported. The value lists its help
names are the store's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_command_imports_only_the_control_client_until_the_daemon_declines() -> None:
    """What every command pays to look for a running serve (docs/performance/latency-and-cli.md):
    the client and the path rule, and of the standard library no TOML parser, no hashlib, no
    socket.py, no argparse and no logging."""
    code = "import sys\nimport gateway.cli.main\nprint(' '.join(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = set(done.stdout.split())
    assert {name for name in loaded if name.startswith("gateway")} == {
        "gateway", "gateway.cli", "gateway.cli.main", "gateway.cli.control_client", "gateway.control_socket"
    }  # fmt: skip
    assert not loaded & {"tomllib", "hashlib", "socket", "argparse", "logging", "sqlalchemy"}


def test_tickets_list_and_show_import_no_other_commands_code(tmp_path: Path) -> None:
    """`tickets list` and `tickets show` on their own import neither the eraser, the staff-command
    parser (no filter given), `ingest`'s intake path nor the operations commands."""
    config = tmp_path / "ticketgate.toml"
    config.write_text(
        f'[gateway]\nsecret = "unit-secret-0123456789abcdef"\n[database]\nurl = "sqlite:///{tmp_path}/t.db"\n'
    )
    for argv in (("tickets", "list"), ("tickets", "show", "TG-1")):
        loaded = _modules_after(*argv, "--config", str(config))
        assert "gateway.cli.tickets" in loaded or "gateway.cli.queue" in loaded  # the command ran
        assert not loaded & {
            "gateway.store.erase", "gateway.pipeline.commands", "gateway.intake.pipe", "gateway.cli.ops",
            "gateway.mail.filenames",
        }, argv  # fmt: skip
