"""IMAP intake against a real Dovecot: delivery into tickets, IDLE and polling, TLS and the three
logins, and the failures that lose or double mail elsewhere (a crash between commit and move, a
server restart, a UIDVALIDITY change, a message that fails every time, two nodes on one mailbox)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ImapAccount, load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.intake.imap import ImapPoller, PollerTiming
from gateway.intake.smtp import SmtpLimits
from gateway.store.db import make_engine
from gateway.store.imap_state import Checkpoint, FetchedMail, ImapStateStore, MailboxLock
from gateway.store.inbox import InboxSummary
from tests.conftest import PROJECT_ROOT
from tests.helpers import make_mail, ticketgate, write_config
from tests.integration.dovecot import (
    BASIC_CAPABILITIES,
    PASSWORD,
    Dovecot,
    TokenIntrospection,
    free_port,
    running_dovecot,
)
from tests.integration.smtp_helpers import ThreadedIntake

pytestmark = pytest.mark.timeout(60)

FAST = PollerTiming(
    reconnect_base=0.1,
    reconnect_cap=0.5,
    lock_retry=0.2,
    idle_tick=0.2,
    socket_timeout=10,
    max_fetch_attempts=3,
    batch_mails=3,  # small, so the ten-mail test commits several batches
    round_uids=4,  # and needs several rounds
)


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'ticketgate.db'}", listen=f"127.0.0.1:{free_port()}"
    )
    built = build_runtime(load_settings(config))
    try:
        yield built
    finally:
        built.close()


def account_for(server: Dovecot, **changes: Any) -> ImapAccount:
    base = ImapAccount(
        name="support",
        host="127.0.0.1",
        port=server.port,
        tls="none",
        username="support",
        password=PASSWORD,
        password_command=None,
        oauth2_token_command=None,
        folder="INBOX",
        processed_folder="Processed",
        quarantine_folder="Quarantine",
        category=None,
        priority=None,
        poll_interval=60.0,
    )
    return replace(base, **changes)


class RunningPoller:
    """An `ImapPoller.run` on its own thread, stopped (and joined) on exit."""

    def __init__(self, poller: ImapPoller, name: str = "imap-test") -> None:
        self.poller = poller
        self.stop = threading.Event()
        self.thread = threading.Thread(target=poller.run, args=(self.stop,), name=name, daemon=True)

    def __enter__(self) -> RunningPoller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the poller did not stop"


def poller_for(
    runtime: Runtime,
    account: ImapAccount,
    *,
    max_message_size: int = 25 * 1024 * 1024,
    on_commit: Callable[[], None] = lambda: None,
    name: str = "imap-test",
    **kwargs: Any,
) -> RunningPoller:
    state = ImapStateStore(runtime.engine)
    poller = ImapPoller(
        account, state, max_message_size=max_message_size, on_commit=on_commit, timing=FAST, **kwargs
    )
    return RunningPoller(poller, name)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> float:
    """Seconds until `condition()` held; fails the test after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def inbox_rows(runtime: Runtime) -> list[InboxSummary]:
    return runtime.inbox.summaries()


def outcomes(runtime: Runtime) -> list[str | None]:
    runtime.processor("test").process_available(limit=100)
    return [row.outcome for row in runtime.inbox.summaries()]


def raw_mails(runtime: Runtime) -> list[bytes]:
    """The raw bytes of every inbox row, in order."""
    return [got[1] for row in inbox_rows(runtime) if (got := runtime.inbox.get(row.id)) is not None]


def mail(subject: str, body: str = "The ADD button does nothing.\n", **kwargs: Any) -> bytes:
    return make_mail(subject, body, **kwargs).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def count(server: Dovecot, folder: str) -> int:
    with server.client() as client:
        if not client.folder_exists(folder):
            return 0
        return int(client.select_folder(folder, readonly=True)[b"EXISTS"])


# --- delivery ---------------------------------------------------------------------------------


@pytest.fixture
def serve_process() -> Iterator[Callable[[Path], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(config: Path) -> subprocess.Popen[bytes]:
        env = {
            k: v for k, v in os.environ.items() if k not in ("TICKETGATE_CONFIG", "TICKETGATE_DATABASE_URL")
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_turns_mail_in_two_mailboxes_into_tickets_with_each_accounts_defaults(
    database_url: str,
    tmp_path: Path,
    serve_process: Callable[[Path], subprocess.Popen[bytes]],
) -> None:
    with running_dovecot(users=("support", "billing")) as server:
        config = write_config(
            tmp_path,
            database_url,
            listen=f"127.0.0.1:{free_port()}",
            extra=f"""
[[imap]]
host = "127.0.0.1"
port = {server.port}
tls = "none"
username = "support"
password = "{PASSWORD}"

[[imap]]
host = "127.0.0.1"
port = {server.port}
tls = "none"
username = "billing"
password_command = "printf '%s\\n' {PASSWORD}"
category = "Billing & Payments"
priority = "High"
""",
        )
        server.append(mail("Payment plan ADD button does nothing"), user="support")
        server.append(
            mail(
                "Charged twice this month", sender="Bo <bo@customer.example>", to="billing@smilepass.example"
            ),
            user="billing",
        )
        build_runtime(load_settings(config)).close()  # the schema, as `ticketgate db upgrade` would
        process = serve_process(config)
        listed: list[dict[str, Any]] = []

        def two_tickets() -> bool:
            run = ticketgate("tickets", "list", "--json", config=config)
            listed[:] = run.json() if run.returncode == 0 else []
            return len(listed) == 2

        try:
            wait_for(two_tickets, timeout=30, what="two tickets")
        finally:
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=30)[0].decode(errors="replace")
        assert process.returncode == 0, output

        tickets = {ticket["title"]: ticket for ticket in listed}
        assert tickets["Payment plan ADD button does nothing"]["category"] == "Technical Issues & Bugs"
        assert tickets["Payment plan ADD button does nothing"]["priority"] == "Low"
        assert tickets["Charged twice this month"]["category"] == "Billing & Payments"
        assert tickets["Charged twice this month"]["priority"] == "High"
        for user in ("support", "billing"):
            assert count_for(server, user, "INBOX") == 0
            assert count_for(server, user, "Processed") == 1


def count_for(server: Dovecot, user: str, folder: str) -> int:
    with server.client(user) as client:
        return int(client.select_folder(folder, readonly=True)[b"EXISTS"])


def test_same_mail_in_two_folders_and_over_smtp_makes_one_ticket_and_is_not_marked_seen(
    dovecot: Dovecot, runtime: Runtime
) -> None:
    same = mail("Cannot log in", message_id="<same-1@customer.example>")
    with (
        ThreadedIntake(runtime.inbox, SmtpLimits(host="127.0.0.1", port=0)) as smtp,
        smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client,
    ):
        client.sendmail("maria@customer.example", ["support@smilepass.example"], same)
    dovecot.append(same, folder="INBOX")
    dovecot.append(same, folder="Support")
    with (
        poller_for(runtime, account_for(dovecot)),
        poller_for(runtime, account_for(dovecot, name="second", folder="Support", processed_folder="Done")),
    ):
        wait_for(lambda: count(dovecot, "Processed") == 1 and count(dovecot, "Done") == 1, what="both moved")
    assert sorted(outcomes(runtime), key=str) == ["duplicate", "duplicate", "ticket"]
    assert sorted(row.source for row in inbox_rows(runtime)) == ["imap:second", "imap:support", "smtp"]
    # BODY.PEEK[]: the mail arrives in Processed exactly as it was, unread.
    assert dovecot.flags("Processed") == [()]
    assert dovecot.messages("Processed") == [same]


# --- IDLE, polling, reconnecting --------------------------------------------------------------


def test_idle_wakes_the_poller_within_seconds(dovecot: Dovecot, runtime: Runtime) -> None:
    committed = threading.Event()
    dovecot.append(mail("First"))
    with poller_for(runtime, account_for(dovecot, poll_interval=600.0), on_commit=committed.set):
        wait_for(committed.is_set, what="the first mail")
        committed.clear()
        time.sleep(1.0)  # now it idles; polling alone would take 600 s
        started = time.monotonic()
        dovecot.append(mail("Second"))
        wait_for(committed.is_set, timeout=10, what="the IDLE wake-up")
        latency = time.monotonic() - started
    print(f"IDLE wake-up: APPEND to inbox commit in {latency:.3f}s")
    assert latency < 5.0
    assert len(inbox_rows(runtime)) == 2


def test_without_idle_and_move_it_polls_and_moves_by_copy_and_expunge(runtime: Runtime) -> None:
    with running_dovecot(capabilities=BASIC_CAPABILITIES) as server:
        server.append(mail("First"))
        with poller_for(runtime, account_for(server, poll_interval=0.3)):
            wait_for(lambda: count(server, "Processed") == 1, what="the first mail moved")
            server.append(mail("Second"))
            wait_for(lambda: count(server, "Processed") == 2, what="the second mail moved by polling")
        assert count(server, "INBOX") == 0  # expunged, not left behind flagged \Deleted
        assert server.flags("Processed") == [(), ()]
    assert outcomes(runtime) == ["ticket", "ticket"]


def test_dovecot_restarted_while_the_poller_idles_it_reconnects(dovecot: Dovecot, runtime: Runtime) -> None:
    dovecot.append(mail("Before the restart"))
    with poller_for(runtime, account_for(dovecot)):
        wait_for(lambda: count(dovecot, "Processed") == 1, what="the first mail")
        time.sleep(0.5)  # idling
        dovecot.restart(downtime=1.0)
        started = time.monotonic()
        dovecot.append(mail("After the restart"))
        wait_for(lambda: count(dovecot, "Processed") == 2, timeout=20, what="mail after the restart")
        print(f"reconnect: mail after the restart taken in {time.monotonic() - started:.2f}s")
    assert outcomes(runtime) == ["ticket", "ticket"]


# --- TLS and logins ---------------------------------------------------------------------------


def test_tls_and_starttls_with_a_trusted_ca_and_refusal_of_an_untrusted_one(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with running_dovecot(tls=True) as server:
        server.append(mail("Over TLS"))
        untrusted = account_for(server, tls="ssl", port=server.imaps_port)
        with caplog.at_level(logging.WARNING, logger="gateway.intake.imap"), poller_for(runtime, untrusted):
            wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, what="a refused certificate")
        assert count(server, "INBOX") == 1 and inbox_rows(runtime) == []

        with poller_for(runtime, untrusted, ssl_context=server.client_context()):
            wait_for(lambda: count(server, "Processed") == 1, what="mail over implicit TLS")
        server.append(mail("Over STARTTLS"))
        starttls = account_for(server, tls="starttls", port=server.port)
        with poller_for(runtime, starttls, ssl_context=server.client_context()):
            wait_for(lambda: count(server, "Processed") == 2, what="mail over STARTTLS")
    assert outcomes(runtime) == ["ticket", "ticket"]


def test_a_failing_password_command_or_a_wrong_password_takes_nothing_and_says_why(
    dovecot: Dovecot, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.append(mail("Waiting for a login"))
    failing = account_for(dovecot, password=None, password_command="echo 'vault sealed' >&2; exit 3")
    with caplog.at_level(logging.WARNING, logger="gateway.intake.imap"), poller_for(runtime, failing):
        wait_for(lambda: "password_command exited with 3: vault sealed" in caplog.text, what="the failure")
    wrong = account_for(dovecot, password="not-the-password")
    with caplog.at_level(logging.WARNING, logger="gateway.intake.imap"), poller_for(runtime, wrong):
        wait_for(lambda: "login as support refused" in caplog.text, what="the refusal")
    assert count(dovecot, "INBOX") == 1 and inbox_rows(runtime) == []


def test_xoauth2_token_from_a_command_logs_in_and_a_bad_token_is_refused(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    introspection = TokenIntrospection(good_token="ya29.good-token", username="support")
    try:
        with running_dovecot(introspection_url=introspection.url) as server:
            server.append(mail("Via OAuth2"))
            bad = account_for(server, password=None, oauth2_token_command="echo ya29.expired-token")
            with caplog.at_level(logging.WARNING, logger="gateway.intake.imap"), poller_for(runtime, bad):
                wait_for(lambda: "refused" in caplog.text, what="a refused token")
            assert count(server, "INBOX") == 1
            good = replace(bad, oauth2_token_command="echo ya29.good-token")
            with poller_for(runtime, good):
                wait_for(lambda: count(server, "Processed") == 1, what="mail via XOAUTH2")
    finally:
        introspection.close()
    # Dovecot asked the token endpoint about exactly the tokens the commands printed.
    assert "ya29.expired-token" in introspection.seen and "ya29.good-token" in introspection.seen
    assert outcomes(runtime) == ["ticket"]


# --- the failures that lose or double mail ----------------------------------------------------


class PauseAfterCommit:
    """The real state store, except that the first commit then signals the test and hangs (to be killed)."""

    def __init__(self, inner: ImapStateStore, marker: Path) -> None:
        self._inner = inner
        self._marker = marker

    def checkpoint(self, account: str, folder: str) -> Checkpoint | None:
        return self._inner.checkpoint(account, folder)

    def reset(self, account: str, folder: str, uidvalidity: int) -> None:
        self._inner.reset(account, folder, uidvalidity)

    def commit(
        self, account: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail], envelope: Envelope
    ) -> list[int]:
        ids = self._inner.commit(account, folder, uidvalidity, mails, envelope)
        self._marker.write_text(json.dumps(ids))
        time.sleep(3600)
        return ids

    def advance(self, account: str, folder: str, uidvalidity: int, uid: int) -> None:
        self._inner.advance(account, folder, uidvalidity, uid)

    def try_lock(self, identity: str) -> MailboxLock | None:
        return self._inner.try_lock(identity)


def crash_harness(arguments: str) -> None:
    """Entry point of the subprocess the crash test kills: a poller that hangs right after a commit."""
    given = json.loads(arguments)
    account = ImapAccount(**given["account"])
    state = PauseAfterCommit(ImapStateStore(make_engine(given["database_url"])), Path(given["marker"]))
    ImapPoller(account, state, max_message_size=10**8, timing=FAST).run(threading.Event())


def test_kill_9_between_commit_and_move_then_restart_loses_and_doubles_nothing(
    dovecot: Dovecot, runtime: Runtime, tmp_path: Path
) -> None:
    original = mail("Killed mid-way")
    dovecot.append(original)
    marker = tmp_path / "committed"
    account = account_for(dovecot)
    arguments = json.dumps(
        {
            "account": {**account.__dict__},
            "database_url": str(runtime.engine.url.render_as_string(hide_password=False)),
            "marker": str(marker),
        }
    )
    code = f"from tests.integration.test_imap_intake import crash_harness; crash_harness({arguments!r})"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT)
    try:
        wait_for(marker.exists, what="the harness to commit")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # Committed (the exact bytes), but nothing happened on the server: still in INBOX, not even \Seen.
    assert raw_mails(runtime) == [original]
    assert count(dovecot, "INBOX") == 1 and dovecot.flags("INBOX") == [()]

    with poller_for(runtime, account):
        wait_for(lambda: count(dovecot, "Processed") == 1, what="the move after the restart")
    assert count(dovecot, "INBOX") == 0
    assert dovecot.messages("Processed") == [original]
    assert outcomes(runtime) == ["ticket"]  # one inbox row: moved on restart, not fetched again


def test_uidvalidity_change_takes_the_folder_in_again_without_new_tickets(
    dovecot: Dovecot, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = mail("First", message_id="<a@customer.example>"), mail("Second")
    dovecot.append(first, folder="Support")
    dovecot.append(second, folder="Support")
    account = account_for(dovecot, folder="Support")
    with poller_for(runtime, account):
        wait_for(lambda: count(dovecot, "Processed") == 2, what="two mails")
    assert outcomes(runtime) == ["ticket", "ticket"]

    # The folder is rebuilt (a restore, a migration): new UIDVALIDITY, UIDs from 1 again, and
    # an old mail back in it beside a new one that now has UID 2, which the old checkpoint covers.
    with dovecot.client() as client:
        client.delete_folder("Support")
        client.create_folder("Support")
    dovecot.append(first, folder="Support")
    third = mail("Third")
    dovecot.append(third, folder="Support")
    with caplog.at_level(logging.WARNING, logger="gateway.intake.imap"), poller_for(runtime, account):
        wait_for(lambda: count(dovecot, "Processed") == 4, what="the rebuilt folder")
    assert "UIDVALIDITY" in caplog.text
    assert outcomes(runtime) == ["ticket", "ticket", "duplicate", "ticket"]
    assert count(dovecot, "Support") == 0


def test_a_mail_that_fails_every_time_goes_to_quarantine_while_the_rest_flow(
    dovecot: Dovecot, runtime: Runtime
) -> None:
    dovecot.append(mail("Good one"))
    dovecot.append(mail("Broken on the server"))
    # The file that holds it (maildir names sort by time only to the second, so not "the last one").
    [broken] = [path for path in dovecot.mail_files() if b"Broken on the server" in path.read_bytes()]
    broken.chmod(0)  # Dovecot fails the FETCH and drops the connection, every time
    dovecot.append(mail("Too big", body="x" * 20_000 + "\n"))
    dovecot.append(mail("Good two"))
    with poller_for(runtime, account_for(dovecot), max_message_size=10_000):
        wait_for(
            lambda: count(dovecot, "Processed") == 2 and count(dovecot, "Quarantine") == 2, what="all sorted"
        )
    assert count(dovecot, "INBOX") == 0
    assert "Internal error" in dovecot.log() or "Permission denied" in dovecot.log()
    assert outcomes(runtime) == ["ticket", "ticket"]
    subjects = [re.search(rb"^Subject: (.*)$", raw, re.MULTILINE) for raw in raw_mails(runtime)]
    assert [match.group(1).strip() if match else None for match in subjects] == [b"Good one", b"Good two"]


# --- scale-out --------------------------------------------------------------------------------


def test_two_nodes_on_one_postgres_database_poll_a_mailbox_one_at_a_time(
    dovecot: Dovecot, fresh_postgres: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_settings(write_config(tmp_path, fresh_postgres, listen=f"127.0.0.1:{free_port()}"))
    nodes = [build_runtime(config), build_runtime(config)]  # two engines: two nodes' worth of connections
    account = account_for(dovecot)
    for n in range(10):
        dovecot.append(mail(f"Mail {n}"))
    pollers = [poller_for(node, account, name=f"node-{i}") for i, node in enumerate(nodes)]
    try:
        with caplog.at_level(logging.INFO, logger="gateway.intake.imap"):
            for poller in pollers:
                poller.__enter__()
            wait_for(lambda: count(dovecot, "Processed") == 10, what="ten mails")
            assert len(inbox_rows(nodes[0])) == 10  # none fetched twice

            def takers() -> set[str]:
                return {
                    str(record.threadName)
                    for record in caplog.records
                    if "taken in as inbox" in record.message
                }

            (holder,) = takers()
            standby = ({"node-0", "node-1"} - {holder}).pop()
            assert any(r.threadName == standby and "standing by" in r.message for r in caplog.records)

            # The holder stops (a node goes down): the other takes the mailbox over.
            pollers[int(holder[-1])].__exit__(None, None, None)
            dovecot.append(mail("After the failover"))
            wait_for(lambda: count(dovecot, "Processed") == 11, what="the mail after the failover")
            assert takers() == {holder, standby}
            assert len(inbox_rows(nodes[0])) == 11
    finally:
        for poller in pollers:
            if poller.thread.is_alive():
                poller.__exit__(None, None, None)
        for node in nodes:
            node.close()


def test_status_shows_each_mailboxs_last_poll_and_its_last_error(
    dovecot: Dovecot, runtime: Runtime, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        runtime.settings.database.url,
        listen=f"127.0.0.1:{free_port()}",
        extra=f"""
[[imap]]
host = "127.0.0.1"
port = {dovecot.port}
tls = "none"
username = "support"
password = "{PASSWORD}"
""",
    )

    def mailbox() -> dict[str, Any]:
        shown = ticketgate("status", "--json", config=config)
        assert shown.returncode == 0, shown.stderr
        [box] = shown.json()["imap"]
        return box

    assert mailbox()["last_poll_at"] is None and mailbox()["last_error"] is None
    wrong = account_for(dovecot, password="not-the-password")
    with poller_for(runtime, wrong):
        wait_for(lambda: "login as support refused" in (mailbox()["last_error"] or ""), what="the error")
    assert mailbox()["last_poll_at"] is None
    with poller_for(runtime, account_for(dovecot)):
        wait_for(lambda: mailbox()["last_poll_at"] is not None, what="a poll")
    box = mailbox()
    assert box["polled_by"] and box["last_error_at"] is not None  # the last error stays for the operator
    text = ticketgate("status", config=config).stdout
    assert "support (INBOX on 127.0.0.1:" in text and "last poll " in text and "last error " in text
