"""`serve` starting and stopping at the edges. A taken SMTP or metrics port (another serve still
stopping, another program, a wrong key) is one line naming the key and exit 71 (EX_OSERR), not a
Python traceback; whatever had started stops in the usual order. A SIGTERM that arrives the moment
the SMTP port answers (systemd stopping a unit it has just started) is a clean stop, exit 0, not a
death by signal. Real `serve` processes, real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ServeProcess, free_port, ticketgate_process, write_config


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


def test_a_sigterm_as_soon_as_the_port_answers_is_a_clean_stop(tmp_path: Path) -> None:
    """ServeProcess returns the moment a connection to the SMTP port succeeds, and SIGTERM is
    sent at once: before, serve took the signal only once its sender, listener and scheduler had
    started, and a SIGTERM in between killed it (exit -15; seen in a CI run under load)."""
    for attempt in range(3):
        port = free_port()
        folder = tmp_path / str(attempt)
        folder.mkdir()
        config = write_config(folder, f"sqlite:///{folder / 'tg.db'}", listen=f"127.0.0.1:{port}")
        serve = ServeProcess(["--config", str(config)], folder, port)
        code = serve.stop()
        assert code == 0, serve.output()
        assert "stopped" in serve.output()
