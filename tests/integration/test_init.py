"""`ticketgate init` (SPEC §14 "A first config") as a newcomer meets it: the file it writes passes
`check-config` and `serve` runs on it as written; a customer's mail becomes a ticket, and the staff
member named with `--staff` answers the notification with `#urgent`, which is applied. `init` never
overwrites a file, and a command that finds no config says on stderr which defaults it runs on."""

from __future__ import annotations

import email
import email.policy
import smtplib
import sqlite3
import time
from pathlib import Path

from tests.helpers import ServeProcess, free_port, make_mail, relayed_mails, ticketgate

STAFF = "ana@smilepass.example"


def _wait_for(what: str, check, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def _staff_notice(outgoing: Path) -> email.message.EmailMessage | None:
    for path in relayed_mails(outgoing):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if STAFF in str(message["To"]):
            return message  # type: ignore[return-value]
    return None


def _priority(database: Path) -> str | None:
    with sqlite3.connect(database) as conn:
        row = conn.execute("SELECT priority FROM tickets WHERE id = 1").fetchone()
    return row[0] if row else None


def test_a_newcomer_inits_serves_and_staff_answer_with_a_command(tmp_path: Path) -> None:
    made = ticketgate("init", "--domain", "smilepass.example", "--staff", STAFF, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    config = tmp_path / "ticketgate.toml"
    written = config.read_text(encoding="utf-8")
    assert 'addresses = ["support@smilepass.example"]' in written
    assert f'addresses = ["{STAFF}"]' in written and f'triage = "{STAFF}"' in written
    assert 'url = "sqlite:///ticketgate.db"' in written and 'relay = "dir:./outgoing"' in written
    assert config.stat().st_mode & 0o077 == 0  # the secret is the owner's

    checked = ticketgate("check-config", cwd=tmp_path)  # found as ./ticketgate.toml, no --config
    assert (checked.returncode, checked.stderr) == (0, "")
    assert checked.stdout == f"config OK: {config}\n"

    again = ticketgate("init", "--staff", "other@smilepass.example", cwd=tmp_path)
    assert again.returncode == 73
    assert (
        again.stderr
        == "ticketgate: ticketgate.toml already exists; init never overwrites a file (name another PATH)\n"
    )
    assert config.read_text(encoding="utf-8") == written

    # The only change a newcomer makes here: a port of the test's own (2525 may be taken).
    port = free_port()
    config.write_text(written.replace("127.0.0.1:2525", f"127.0.0.1:{port}"), encoding="utf-8")
    serve = ServeProcess([], tmp_path, port)
    try:
        customer = make_mail(
            "Card declined at checkout", "My card is declined.", message_id="<c1@customer.example>"
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            assert client.sendmail("maria@customer.example", ["support@smilepass.example"], customer) == {}
        notice = _wait_for("the staff notice", lambda: _staff_notice(tmp_path / "outgoing"))
        reply_to = notice["Reply-To"].addresses[0].addr_spec
        assert reply_to.startswith("support+TG-1.")

        answer = make_mail(f"Re: {notice['Subject']}", "#urgent\n", sender=f"Ana <{STAFF}>", to=reply_to,
                           headers={"In-Reply-To": notice["Message-ID"]})  # fmt: skip
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            assert client.sendmail(STAFF, [reply_to], answer) == {}
        _wait_for("#urgent applied", lambda: _priority(tmp_path / "ticketgate.db") == "Urgent")
    finally:
        serve.stop()
    shown = ticketgate("tickets", "show", "TG-1", "--json", cwd=tmp_path).json()
    assert shown["priority"] == "Urgent"
    assert ("priority_changed", "Urgent", STAFF) in [
        (e["kind"], e["new"], e["actor"]) for e in shown["events"]
    ]


def test_init_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    refused = [
        (["--domain", "not a domain"], "--domain 'not a domain' is not a domain such as example.com"),
        (["--staff", "ana"], "--staff: expected an address such as name@example.com, got 'ana'"),
        (
            ["--domain", "x.example", "--staff", "support@x.example"],
            "--staff 'support@x.example' is the support address itself: mail to it would loop",
        ),
    ]
    for args, problem in refused:
        run = ticketgate("init", *args, cwd=tmp_path)
        assert (run.returncode, run.stderr) == (64, f"ticketgate: {problem}\n")
    assert list(tmp_path.iterdir()) == []
    elsewhere = ticketgate("init", str(tmp_path / "absent" / "t.toml"), cwd=tmp_path)
    assert elsewhere.returncode == 73 and elsewhere.stderr.startswith("ticketgate: cannot write ")


def test_a_command_without_a_config_says_which_defaults_it_runs_on(tmp_path: Path) -> None:
    run = ticketgate("tickets", "list", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.json() == []  # stdout is untouched
    assert run.stderr == (
        "ticketgate: no config file (--config, $TICKETGATE_CONFIG or ./ticketgate.toml): running on the "
        "embedded defaults: database sqlite:///ticketgate.db, SMTP on 127.0.0.1:2525, outgoing mail to "
        "dir:./outgoing, mail for support@* (`ticketgate init` writes a config)\n"
    )
