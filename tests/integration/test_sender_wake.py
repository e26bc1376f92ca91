"""The outbox sender is woken when notifications are queued, not left to its poll.

Each `serve` here polls its outbox once an hour (`notifications.poll_seconds = 3600`), so an
acknowledgement that reaches the outgoing folder within seconds was sent because something woke
the sender: the commit in a worker process (or in `serve` itself), or, on PostgreSQL, the
NOTIFY of another process (a `tickets update` command). No speed is asserted beyond "seconds, not
the hour": how fast it is, is bench/ack_latency.py's to say.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from email.message import Message
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path

import pytest

from tests.helpers import ServeProcess, free_port, make_mail, ticketgate, write_config

MARIA = "maria@customer.example"
WITHIN_SECONDS = 20.0  # a woken sender takes milliseconds; the poll would take an hour
HOURLY_POLL = "\n[notifications]\npoll_seconds = 3600\n"


def _mails_to(folder: Path, address: str) -> list[Message]:
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("[!.]*.eml")):
        mail = BytesParser(policy=default_policy).parsebytes(path.read_bytes())
        if address in str(mail["To"]):
            found.append(mail)
    return found


def _wait_for_mail(folder: Path, address: str, count: int, serve: ServeProcess) -> list[Message]:
    deadline = time.monotonic() + WITHIN_SECONDS
    while time.monotonic() < deadline:
        mails = _mails_to(folder, address)
        if len(mails) >= count:
            return mails
        time.sleep(0.05)
    raise AssertionError(f"no mail #{count} to {address} within {WITHIN_SECONDS:.0f} s:\n{serve.output()}")


@pytest.fixture(params=[1, 0], ids=["worker-process", "in-serve"])
def serve(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[ServeProcess]:
    """`serve` polling its outbox hourly, processing in a worker process or on its own threads."""
    if request.param == 0 and not database_url.startswith("sqlite"):
        pytest.skip("the in-serve processing is the same code on PostgreSQL")
    port = free_port()
    extra = HOURLY_POLL + f"\n[processing]\nprocesses = {request.param}\n"
    config = write_config(tmp_path, database_url, extra, listen=f"127.0.0.1:{port}")
    running = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        yield running
    finally:
        running.stop()


def _send(serve: ServeProcess, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=10) as client:
        client.sendmail(MARIA, ["support@smilepass.example"], make_mail(subject, sender=f"Maria <{MARIA}>"))


def test_each_acknowledgement_goes_out_though_the_sender_polls_hourly(
    serve: ServeProcess, tmp_path: Path
) -> None:
    outgoing = tmp_path / "outgoing"
    # Given a serve that has already sent one acknowledgement and gone back to waiting
    _send(serve, "Payment plan ADD button does nothing")
    (first,) = _wait_for_mail(outgoing, MARIA, 1, serve)
    time.sleep(0.5)
    # When another mail comes in
    _send(serve, "The invoice shows the wrong VAT number")
    # Then its acknowledgement is in the folder within seconds, not the hour of the poll
    mails = _wait_for_mail(outgoing, MARIA, 2, serve)
    assert "[SP-" in str(first["Subject"])
    assert any("wrong VAT number" in str(mail["Subject"]) for mail in mails)


@pytest.mark.postgres
def test_a_reply_queued_by_another_process_is_sent_at_once_on_postgresql(
    tmp_path: Path, fresh_postgres: str
) -> None:
    # Given a serve on PostgreSQL polling its outbox hourly, and a ticket it acknowledged
    port = free_port()
    config = write_config(tmp_path, fresh_postgres, HOURLY_POLL, listen=f"127.0.0.1:{port}")
    serve = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        outgoing = tmp_path / "outgoing"
        _send(serve, "Refund not received")
        (ack,) = _wait_for_mail(outgoing, MARIA, 1, serve)
        ref = str(ack["Subject"]).split("[", 1)[1].split("]", 1)[0]
        # When staff reply with the command line: another process, which only the database joins
        reply = tmp_path / "reply.txt"
        reply.write_text("Hello Maria,\n\nthe refund left today.\n", encoding="utf-8")
        done = ticketgate(
            "tickets", "update", ref, "--reply-file", str(reply), "--as", "ana@smilepass.example",
            config=config,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        # Then serve sends the reply within seconds (LISTEN/NOTIFY), not at its hourly poll
        mails = _wait_for_mail(outgoing, MARIA, 2, serve)
        assert any("the refund left today" in mail.get_body(("plain",)).get_content() for mail in mails)
    finally:
        serve.stop()


def test_a_notify_rolled_back_with_its_mails_savepoint_is_sent_again_by_the_next_mail(
    fresh_postgres: str,
) -> None:
    """A batch run in savepoints (one mail of it failed): the NOTIFY that the first mail's outbox
    row sent is rolled back with its savepoint, so the next mail that queues a row must send its
    own, or the sender learns of it only at its poll. Real PostgreSQL, a real LISTEN connection."""
    import psycopg
    from sqlalchemy import make_url

    from gateway.store import outbox_wake
    from gateway.store.db import make_engine, make_session_factory, savepoint, unit_of_work

    engine = make_engine(fresh_postgres)
    conninfo = make_url(fresh_postgres).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True) as listener:
            listener.execute(f"LISTEN {outbox_wake.CHANNEL}")
            with unit_of_work(make_session_factory(engine)) as session:
                try:
                    with savepoint(session):
                        outbox_wake.queued(session)  # the first mail queues a row ...
                        raise RuntimeError("... and then fails")
                except RuntimeError:
                    pass
                with savepoint(session):
                    outbox_wake.queued(session)  # the next mail's row
            received = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in received] == [outbox_wake.CHANNEL]
    finally:
        engine.dispose()
