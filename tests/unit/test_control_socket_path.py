"""Where the control socket is (gateway/control_socket.py): `serve` and every command work it out
alike from the config file, so they meet without either naming it."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.cli.control_client import _socket_path
from gateway.control_socket import KEY, socket_path


def test_the_default_socket_is_in_the_working_folder_named_after_the_config(tmp_path: Path) -> None:
    path = socket_path(None, tmp_path / "ticketgate.toml")
    assert path is not None and os.path.dirname(path) == ""  # relative: the working folder
    assert path.startswith("ticketgate-") and path.endswith(".sock")


def test_each_config_file_gets_its_own_socket_and_a_link_to_it_the_same(tmp_path: Path) -> None:
    first, second = tmp_path / "node-a.toml", tmp_path / "node-b.toml"
    link = tmp_path / "link.toml"
    first.write_text("")
    link.symlink_to(first)
    assert socket_path(None, first) != socket_path(None, second)
    assert socket_path(None, first) != socket_path(None, None)  # the embedded defaults
    assert socket_path(None, link) == socket_path(None, first)
    assert socket_path(None, str(first)) == socket_path(None, first)


def test_a_named_socket_is_used_as_written_and_an_empty_one_is_off() -> None:
    assert socket_path("/run/ticketgate/control.sock", None) == "/run/ticketgate/control.sock"
    assert socket_path("", None) is None
    assert socket_path("  ", "x.toml") is None


def test_the_command_finds_the_path_serve_finds_from_the_same_file(tmp_path: Path) -> None:
    config = tmp_path / "ticketgate.toml"
    config.write_text('[gateway]\nsecret = "x"\n')  # no `control.socket`: no TOML parse
    assert KEY not in config.read_bytes()
    assert _socket_path(str(config)) == socket_path(None, config)
    config.write_text('[control]\nsocket = "/run/tg/control.sock"\n')
    assert _socket_path(str(config)) == "/run/tg/control.sock"
    config.write_text('[control]\nsocket = ""\n')
    assert _socket_path(str(config)) is None
    # "socket" elsewhere (a comment, another table): parsed, and the default all the same
    config.write_text('# the control socket is on by default\n[gateway]\nsecret = "x"\n')
    assert _socket_path(str(config)) == socket_path(None, config)
    # a config the loader would refuse there: the command runs alone and says so
    config.write_text("[control]\nsocket = false\n")
    assert _socket_path(str(config)) is None
    config.write_text("[control\nsocket = ")
    assert _socket_path(str(config)) is None
    assert _socket_path(str(tmp_path / "missing.toml")) is None
    assert _socket_path(None) == socket_path(None, None)
