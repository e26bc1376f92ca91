"""`serve` whose SMTP or metrics port is taken (another serve still stopping, another program, a
wrong key) says so in one line naming the key and exits 71 (EX_OSERR), instead of a Python
traceback; whatever it had started stops in the usual order. Real `serve` processes, real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, ticketgate_process, write_config


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", free_port()))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


@pytest.mark.parametrize("key", ["smtp.listen", "metrics.listen"])
def test_a_taken_port_is_one_line_naming_the_key_and_exit_71(
    key: str, taken_port: int, tmp_path: Path
) -> None:
    smtp_port = taken_port if key == "smtp.listen" else free_port()
    metrics_port = taken_port if key == "metrics.listen" else free_port()
    config = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'tg.db'}",
        f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n',
        listen=f"127.0.0.1:{smtp_port}",
    )
    run = ticketgate_process("serve", config=config)
    assert run.returncode == 71, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if " ERROR " in line]
    expected = (
        f"ERROR gateway.daemon.main: cannot listen on 127.0.0.1:{taken_port} ({key}): "
        "address already in use (another serve, or another program, has it)"
    )
    assert [line.split(" ", 2)[2] for line in errors] == [expected], run.stderr
