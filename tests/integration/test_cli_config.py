"""`ticketgate check-config` and config errors as an operator meets them: every problem, with its key."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import PROJECT_ROOT, ticketgate, ticketgate_process


def test_check_config_lists_every_problem_with_its_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[gateway]\naddresses = ["support@smilepass.example"]\nticket_prefx = "SP"\n'
        '[smtp]\nlisten = "nowhere"\nmax_recipients = -3\n'
    )

    run = ticketgate("check-config", config=bad)

    assert run.returncode == 78
    assert "gateway.secret: required" in run.stderr
    assert "gateway.ticket_prefx: unknown key; did you mean 'ticket_prefix'?" in run.stderr
    assert "smtp.listen: expected HOST:PORT" in run.stderr
    assert "smtp.max_recipients: must be 1 or more, got -3" in run.stderr


def test_the_example_deployment_is_valid() -> None:
    run = ticketgate("check-config", config=PROJECT_ROOT / "config" / "smilepass.toml")
    assert run.returncode == 0, run.stderr
    assert "config OK" in run.stdout


def test_serve_refuses_a_bad_config_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\nsecret = "0123456789abcdefghij"\n[database]\nurl = 42\n')

    run = ticketgate_process("serve", config=bad)  # the daemon, as it starts

    assert run.returncode == 78
    assert "database.url:" in run.stderr


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    run = ticketgate("check-config", config=bad)
    assert run.returncode == 78
    assert "config:" in run.stderr and "line 1" in run.stderr
