"""A claimed batch goes to the relay in one session (docs/admin/notifications.md, "One
connection per batch"): over a real SMTP sink, the batch's mails share one connection (EHLO, STARTTLS and AUTH
once; QUIT at the end), a refused recipient in the middle fails or retries only its own
notification, and a connection dropped in the middle is opened again once and loses nothing; the
folder relay makes a batch's files durable together and shows none before that. No mocks: the sink
is aiosmtpd on loopback and the folder is a real one."""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from gateway.config import load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.notify.relay import DeliveryError, DirRelay, Outgoing
from gateway.notify.sender import CLAIM_BATCH, Sender
from tests.helpers import make_mail
from tests.integration.smtp_sink import SmtpSink
from tests.integration.test_notifications import Clock, config_with, deliver, outbox_rows, smtp_sender


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """SQLite: what is tested here is the relay's side, the same on either store."""
    built = build_runtime(load_settings(config_with(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def queue(runtime: Runtime, customers: int) -> None:
    """Two notifications per customer: the acknowledgement, then the note to triage."""
    for n in range(customers):
        deliver(runtime, make_mail(sender=f"c{n}@customer.example", subject=f"Problem {n}"))


def message_ids(sink: SmtpSink) -> Counter[str]:
    return Counter(str(mail.message["Message-ID"]) for mail in sink.captured)


def test_a_batch_goes_over_one_connection_and_ends_with_quit(runtime: Runtime, sink: SmtpSink) -> None:
    queue(runtime, 5)
    results = smtp_sender(runtime, sink).send_due()
    assert [r.status for r in results] == ["sent"] * 10
    (connection,) = sink.connections
    assert connection.mails == 10 and connection.quit and connection.rsets == 0
    assert {mail.connection for mail in sink.captured} == {1}
    assert {row.status for row in outbox_rows(runtime)} == {"sent"}


def test_each_claimed_batch_has_a_connection_of_its_own(runtime: Runtime, sink: SmtpSink) -> None:
    queue(runtime, CLAIM_BATCH)  # two full batches
    assert len(smtp_sender(runtime, sink).send_due()) == 2 * CLAIM_BATCH
    assert [c.mails for c in sink.connections] == [CLAIM_BATCH, CLAIM_BATCH]
    assert all(c.quit for c in sink.connections)


def test_starttls_and_auth_happen_once_per_connection(runtime: Runtime) -> None:
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    queue(runtime, 4)
    with SmtpSink(starttls=server, login=("ticketgate", "s3cret")) as sink:
        sender = smtp_sender(runtime, sink, user="ticketgate", password="s3cret", tls_context=client)
        assert {r.status for r in sender.send_due()} == {"sent"}
    (connection,) = sink.connections
    assert (connection.starttls, connection.auth, connection.mails) == (1, 1, 8)
    assert all(mail.tls and mail.authenticated for mail in sink.captured)


@pytest.mark.parametrize(("code", "status"), [(550, "failed"), (451, "retry")])
def test_a_recipient_refused_mid_batch_fails_only_its_own_notification(
    runtime: Runtime, sink: SmtpSink, code: int, status: str
) -> None:
    queue(runtime, 4)
    refused = "c1@customer.example"  # the third notification of the batch
    sink.refuse(refused, code)
    clock = Clock()
    results = smtp_sender(runtime, sink, clock=clock).send_due()
    by_address = {row.id: row.to_address for row in outbox_rows(runtime)}
    assert [(by_address[r.outbox_id], r.status) for r in results if r.status != "sent"] == [(refused, status)]
    assert sum(r.status == "sent" for r in results) == 7
    assert not any(r.outage for r in results)
    (connection,) = sink.connections  # the refusal did not cost the others their connection
    assert connection.mails == 7 and connection.rsets == 1  # smtplib reset the refused transaction
    (row,) = [row for row in outbox_rows(runtime) if row.status != "sent"]
    assert row.to_address == refused and str(code) in (row.last_error or "")

    if code == 451:  # taken later, when the recipient is accepted again
        sink.accept(refused)
        clock.advance(hours=1)
        assert [r.status for r in smtp_sender(runtime, sink, clock=clock).send_due()] == ["sent"]
        assert {row.status for row in outbox_rows(runtime)} == {"sent"}
    assert set(message_ids(sink).values()) == {1}


def test_a_refusal_at_data_mid_batch_fails_only_that_mail(runtime: Runtime, sink: SmtpSink) -> None:
    queue(runtime, 3)
    sink.answer(250, 250, 550, 250, 451)
    results = smtp_sender(runtime, sink).send_due()
    assert [r.status for r in results] == ["sent", "sent", "failed", "sent", "retry", "sent"]
    (connection,) = sink.connections
    assert connection.mails == 4


@pytest.mark.parametrize("taken", [False, True], ids=["lost-before-taken", "lost-after-taken"])
def test_a_connection_dropped_mid_batch_is_opened_again_once_and_nothing_is_lost(
    runtime: Runtime, sink: SmtpSink, taken: bool
) -> None:
    queue(runtime, 4)
    sink.drop_at(3, taken=taken)  # the third mail: the server closes without answering its DATA
    results = smtp_sender(runtime, sink).send_due()
    assert [r.status for r in results] == ["sent"] * 8
    assert [c.mails for c in sink.connections] == [3 if taken else 2, 6]
    sent = message_ids(sink)
    assert len(sent) == 8  # every notification arrived
    # At least once: the mail in flight goes again on the new connection; the relay has it twice
    # only if it had taken it before the connection was lost.
    assert sorted(sent.values()) == ([1] * 7 + [2] if taken else [1] * 8)
    assert {row.status for row in outbox_rows(runtime)} == {"sent"}


def test_a_second_drop_in_one_batch_is_an_outage_and_the_rest_wait_untried(
    runtime: Runtime, sink: SmtpSink
) -> None:
    queue(runtime, 4)
    sink.drop_at(2, 4)  # the second mail, then (after one reconnect) the third
    clock = Clock()
    sender = smtp_sender(runtime, sink, clock=clock)
    results = sender.send_due()
    assert [(r.status, r.outage) for r in results] == [("sent", False), ("sent", False), ("retry", True)]
    rows = outbox_rows(runtime)
    # Only the one in flight is charged an attempt (as the two sent were); the rest were not tried.
    assert sorted((row.status, row.attempts) for row in rows) == [("queued", 0)] * 5 + [
        ("retry", 1),
        ("sent", 1),
        ("sent", 1),
    ]
    assert all(row.claimed_by is None for row in rows)

    assert len(sender.send_due()) == 5  # the untried are due again at once
    clock.advance(hours=1)
    assert [r.status for r in sender.send_due()] == ["sent"]  # and the one tried, after its back-off
    assert {row.status for row in outbox_rows(runtime)} == {"sent"}
    assert len(message_ids(sink)) == 8 and set(message_ids(sink).values()) == {1}


# --- the folder relay ---------------------------------------------------------------------------


def mail(name: str) -> Outgoing:
    return Outgoing("bounce@smilepass.example", "maria@customer.example", make_mail(subject=name), name)


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_folder_session_shows_no_file_before_it_commits(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    with DirRelay(folder).session() as session:
        for n in range(3):
            session.send(mail(f"{n:08d}"))
        assert visible(folder) == []  # written under temporary (hidden) names only
        session.commit()
        assert visible(folder) == ["00000000.eml", "00000001.eml", "00000002.eml"]
        session.send(mail("00000003"))  # never committed: never delivered
    assert sorted(p.name for p in folder.iterdir()) == ["00000000.eml", "00000001.eml", "00000002.eml"]
    assert (folder / "00000001.eml").read_bytes().startswith(b"Return-Path: <bounce@smilepass.example>\r\n")


def test_a_folder_mail_sent_again_replaces_its_own_file(tmp_path: Path) -> None:
    relay = DirRelay(tmp_path / "out")
    relay.send(mail_from="a@x.example", rcpt_to="b@y.example", raw=b"Subject: one\r\n\r\n", name="00000007")
    relay.send(mail_from="a@x.example", rcpt_to="b@y.example", raw=b"Subject: two\r\n\r\n", name="00000007")
    (only,) = (tmp_path / "out").iterdir()
    assert only.read_bytes().endswith(b"Subject: two\r\n\r\n")


def test_a_folder_batch_that_cannot_be_made_durable_counts_nothing_as_sent(
    tmp_path: Path, runtime: Runtime
) -> None:
    """The third file's final name is taken by a folder, so the batch's renames fail half-way: every
    mail of the batch is retried (none counted as sent), and once the way is clear each is written
    again under its own name, once."""
    queue(runtime, 3)
    out = tmp_path / "out"
    third = outbox_rows(runtime)[2].id
    (out / f"{third:08d}.eml").mkdir(parents=True)
    clock = Clock()
    sender = Sender(
        runtime.inbox.sessions, DirRelay(out), runtime.settings.notifications, worker="t", clock=clock
    )
    results = sender.send_due()
    assert [(r.status, r.outage) for r in results] == [("retry", True)] * 6
    assert not list(out.glob(".tmp-*"))

    (out / f"{third:08d}.eml").rmdir()
    clock.advance(hours=1)
    assert [r.status for r in sender.send_due()] == ["sent"] * 6
    assert len(visible(out)) == 6 and not list(out.glob(".tmp-*"))
    assert {row.status for row in outbox_rows(runtime)} == {"sent"}


def test_a_folder_that_cannot_be_made_is_an_outage_for_the_first_mail(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with DirRelay(blocker / "out").session() as session, pytest.raises(DeliveryError) as raised:
        session.send(mail("00000001"))
    assert raised.value.outage and not raised.value.permanent
