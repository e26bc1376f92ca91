"""The whole daemon through a database cut (SPEC §15): `ticketgate serve` reaches PostgreSQL through
the fault proxy (tests/faults/proxy.py), which resets every connection and refuses new ones for
three seconds, at the moment the relay (a real SMTP sink) takes the sixth notification, while mail
keeps arriving by SMTP.

What a user would observe: every mail that got `250` is one ticket; every notification reaches the
relay exactly once (the cut is the database's, not the relay's: nothing may go twice); and within
60 s of the database coming back, nothing is left pending or due. Measured before: the sender's
claims waited out their 10-minute lease and the processor's its 5-minute one.
"""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gateway.store.db import make_engine
from tests.faults.proxy import FaultProxy
from tests.helpers import ServeProcess, free_port, make_mail, write_config
from tests.integration.smtp_sink import SmtpSink

MAILS = 24
CUT_SECONDS = 3.0
BACK_WITHIN_SECONDS = 60.0


@pytest.fixture
def engine(fresh_postgres: str) -> Iterator[Engine]:
    """The test's own look, around the proxy."""
    engine = make_engine(fresh_postgres)
    yield engine
    engine.dispose()


def send_all(port: int, numbers: range) -> int:
    """Send these mails, each again after a 4xx or a dropped connection (as a sending MTA does);
    returns how many refusals it met."""
    refusals = 0
    for n in numbers:
        raw = make_mail(sender=f"c{n}@customer.example", subject=f"Problem {n}")
        for _ in range(200):
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
                    client.sendmail(f"c{n}@customer.example", ["support@smilepass.example"], raw)
                break
            except (OSError, smtplib.SMTPException):
                refusals += 1
                time.sleep(0.1)
        else:
            raise AssertionError(f"mail {n} was refused for too long")
        time.sleep(0.1)  # mail keeps arriving while the database is cut, not all before
    return refusals


def counts(engine: Engine) -> tuple[Counter[str], Counter[str]]:
    """Inbox rows by outcome (`pending` while unsettled) and outbox rows by status."""
    with engine.connect() as conn:
        inbox = Counter(
            str(outcome or state) for state, outcome in conn.execute(text("select state, outcome from inbox"))
        )
        outbox = Counter(str(status) for (status,) in conn.execute(text("select status from outbox")))
    return inbox, outbox


def test_serve_through_a_database_cut_loses_nothing_sends_each_once_and_moves_within_a_minute(
    fresh_postgres: str, engine: Engine, tmp_path: Path
) -> None:
    url = make_url(fresh_postgres)
    smtp_port = free_port()
    with SmtpSink() as sink, FaultProxy(url.port or 5432, target_host=url.host or "127.0.0.1") as proxy:
        through = url.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        config = write_config(tmp_path, through, listen=f"127.0.0.1:{smtp_port}")
        body = config.read_text(encoding="utf-8").replace(
            f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"'
        )
        config.write_text(body, encoding="utf-8")

        back_at: list[float] = []

        def lift() -> None:
            proxy.pass_through()
            back_at.append(time.monotonic())

        lifting = threading.Timer(CUT_SECONDS, lift)

        def cut() -> None:
            proxy.cut()
            lifting.start()

        sink.at_data(6, cut)  # the sender's batch is in the relay's hands when the database goes
        serve = ServeProcess(["--config", str(config)], cwd=tmp_path, port=smtp_port)
        try:
            # The first mail, until its notifications reach the relay: the worker process is up.
            refusals = send_all(smtp_port, range(1))
            warm = time.monotonic() + 60
            while sink.attempts < 2 and time.monotonic() < warm:
                time.sleep(0.1)
            refusals += send_all(smtp_port, range(1, MAILS))
            waited_for_cut = time.monotonic() + 30  # the cut can come after the last mail went in
            while not back_at and time.monotonic() < waited_for_cut:
                time.sleep(0.1)
            assert back_at, f"no cut: the sink saw {sink.attempts} DATA\n{serve.output()}"
            while True:
                inbox, outbox = counts(engine)
                # A cut can swallow the answer to an intake COMMIT the server made: the client was
                # told 451 and sent the mail again, which is then stored twice and processed as a
                # duplicate of the first (SMTP cannot tell "not stored" from "answer lost").
                settled = (
                    inbox["ticket"] == MAILS
                    and set(inbox) <= {"ticket", "duplicate"}
                    and "pending" not in inbox
                    and "processing" not in inbox
                    and sum(outbox.values()) == 2 * MAILS
                    and set(outbox) == {"sent"}
                )
                if settled:
                    break
                waited = time.monotonic() - back_at[0]
                assert waited < BACK_WITHIN_SECONDS, (
                    f"{waited:.0f}s after the database came back: inbox {dict(inbox)}, outbox "
                    f"{dict(outbox)}\n{serve.output()}"
                )
                time.sleep(0.2)
            moved_after = time.monotonic() - back_at[0]
        finally:
            lifting.cancel()
            code = serve.stop()
        assert code == 0, serve.output()

    assert inbox["ticket"] == MAILS and set(inbox) <= {"ticket", "duplicate"}, inbox
    per_notification = Counter(str(mail.message["Message-ID"]) for mail in sink.captured)
    assert len(per_notification) == 2 * MAILS
    assert set(per_notification.values()) == {1}, "a notification reached the relay twice"
    print(f"cut {CUT_SECONDS:.0f}s; SMTP refusals meanwhile {refusals}; all settled {moved_after:.1f}s after")
