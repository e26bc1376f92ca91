"""Where the control socket is (gateway/control_socket.py): `serve` and every command work it out
alike from the config file and the database, so they meet without either naming it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from gateway.config.sections.gateway import DEFAULT_DATABASE_URL
from gateway.control_socket import DEFAULT_DATABASE_URL as SPELLED_HERE
from gateway.control_socket import socket_path, sqlite_folder


def test_the_default_database_is_the_configs_own() -> None:
    assert SPELLED_HERE == DEFAULT_DATABASE_URL


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///ticketgate.db",
        "sqlite:////var/lib/ticketgate/ticketgate.db",
        "sqlite+pysqlite:///data%20dir/t.db",
        "sqlite:///relative/t.db?timeout=3",
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///file:t.db?mode=ro&uri=true",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ],
)
def test_the_folder_is_the_sqlite_files_as_sqlalchemy_reads_the_url(url: str) -> None:
    parsed = make_url(url)
    database = parsed.database or ""
    on_disk = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    expected = os.path.dirname(database) if on_disk and not database.startswith("file:") else ""
    assert sqlite_folder(url) == expected


def test_the_socket_is_beside_the_sqlite_database_named_after_the_config(tmp_path: Path) -> None:
    config = tmp_path / "ticketgate.toml"
    path = socket_path(None, config, f"sqlite:///{tmp_path / 'data' / 'ticketgate.db'}")
    assert path is not None
    assert Path(path).parent == tmp_path / "data"
    assert Path(path).name.startswith("ticketgate-") and path.endswith(".sock")
    # Relative database: relative socket, in the working folder, as the database is
    assert os.path.dirname(socket_path(None, config, "sqlite:///ticketgate.db") or "/") == ""
    # PostgreSQL: the working folder
    assert os.path.dirname(socket_path(None, config, "postgresql+psycopg://u@h/db") or "/") == ""


def test_each_config_file_gets_its_own_socket_and_a_link_to_it_the_same(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = tmp_path / "node-a.toml", tmp_path / "node-b.toml"
    link = tmp_path / "link.toml"
    first.write_text("")
    link.symlink_to(first)
    assert socket_path(None, first, url) != socket_path(None, second, url)
    assert socket_path(None, first, url) != socket_path(None, None, url)  # the embedded defaults
    assert socket_path(None, link, url) == socket_path(None, first, url)
    assert socket_path(None, str(first), url) == socket_path(None, first, url)


def test_a_named_socket_is_used_as_written_and_an_empty_one_is_off() -> None:
    assert socket_path("/run/ticketgate/control.sock", None, DEFAULT_DATABASE_URL) == (
        "/run/ticketgate/control.sock"
    )
    assert socket_path("", None, DEFAULT_DATABASE_URL) is None
    assert socket_path("  ", "x.toml", DEFAULT_DATABASE_URL) is None
