"""The layers hold: `lint-imports` checks the contracts in pyproject.toml ([tool.importlinter]),
so an import that crosses a layer fails the suite like any other regression. The layers and why
are in docs/development/index.md and ARCHITECTURE.md "Dependency direction"."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept() -> None:
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint_imports).exists():
        pytest.fail("import-linter is part of the test extras: pip install -e '.[test]'")
    done = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 7
    assert f"Contracts: {len(contracts)} kept, 0 broken." in done.stdout
