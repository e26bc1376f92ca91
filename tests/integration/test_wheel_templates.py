"""The notification templates live in the top-level `templates/` folder and ship inside the wheel
(as the data-only package `ticketgate_templates`, see setup.py): a wheel built from the project
holds every one of them, and a plain (non-editable) install of it sends a rendered notification."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT, make_mail, relayed_mails, write_config


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: pip builds in the source tree, and a build/ folder left there from an
    # earlier build would put files into the wheel that the project no longer has.
    source = out / "source"
    skip = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")
    shutil.copytree(PROJECT_ROOT, source, ignore=skip)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [path] = out.glob("ticketgate-*.whl")
    return path


def test_the_wheel_holds_every_template(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {name for name in names if name.startswith("ticketgate_templates/")}
    in_tree = {f"ticketgate_templates/{p.name}" for p in (PROJECT_ROOT / "templates").iterdir()}
    assert len(in_tree) >= 16  # 15 templates and the package's __init__.py
    assert shipped == in_tree
    assert "gateway/store/migrations/versions/0001_initial_schema.py" in names  # the other package data
    assert not any(name.startswith("gateway/templates/") for name in names)


@pytest.mark.timeout(300)
def test_an_installed_wheel_renders_the_acknowledgement(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "work"
    work.mkdir()
    config = write_config(work, f"sqlite:///{work / 'db.sqlite'}")
    # The installed copy comes first on the path; the project folder is nowhere on it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETGATE_")} | {
        "PYTHONPATH": str(target)
    }

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, *args], input=stdin, capture_output=True, cwd=work, env=env, timeout=120
        )

    where = run(
        "-c", "import gateway, ticketgate_templates as t; print(gateway.__file__); print(*t.__path__)"
    )
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(target)) for line in where.stdout.decode().split()), where.stdout

    ingested = run("-m", "gateway.cli.main", "ingest", "--config", str(config), stdin=make_mail())
    assert ingested.returncode == 0, ingested.stderr.decode()
    mails = [message_from_bytes(p.read_bytes(), policy=default) for p in relayed_mails(work / "outgoing")]
    [ack] = [m for m in mails if m["To"].addresses[0].addr_spec == "maria@customer.example"]
    assert isinstance(ack, EmailMessage)
    assert ack["Subject"] == "[SP-1] Payment plan ADD button does nothing"
    text = ack.get_body(preferencelist=("plain",))
    html = ack.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "SP-1" in text.get_content()
    assert "<html>" in html.get_content()
