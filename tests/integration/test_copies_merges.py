"""Copies, merges and quoting end to end (SPEC §13): `ticketgate serve` on a loopback port, mail in by
smtplib, notifications out through a real SMTP relay (the aiosmtpd sink), their Reply-To and
Message-ID used as a mail client would, tickets read back with `ticketgate tickets show --json`."""

from __future__ import annotations

import email.utils
import smtplib
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.present import ticket_json, ticket_summary_json
from gateway.reply_address import reply_address
from gateway.store import outbox as outbox_store
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from tests.helpers import TEST_SECRET, ServeProcess, free_port, make_mail, ticketgate, write_config
from tests.integration.smtp_sink import Captured, SmtpSink
from tests.unit.test_copies import REQUESTER, entries, expected, mail_with

SUPPORT = "support@smilepass.example"
MARIA = "Maria Lopez <maria@customer.example>"
ANA = "Ana <ana@smilepass.example>"
TRIAGE = "triage@smilepass.example"


class Desk:
    """A running `ticketgate serve` relaying to a real SMTP sink, and what people see of it."""

    def __init__(self, tmp_path: Path, database_url: str, sink: SmtpSink) -> None:
        port = free_port()
        self.config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
        text = self.config.read_text(encoding="utf-8")
        text = text.replace(
            f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"'
        )
        self.config.write_text(text, encoding="utf-8")
        self.sink = sink
        self.serve = ServeProcess(["--config", str(self.config)], tmp_path, port)
        self.port = port
        # Waiting reads the database in process (a `ticketgate` run costs seconds on a loaded machine);
        # what a test asserts about the CLI it reads from `ticketgate tickets show --json` itself.
        self.runtime = build_runtime(load_settings(self.config, environ={}))

    def stop(self) -> None:
        self.runtime.close()
        self.serve.stop()

    def read(self, ref: str) -> dict[str, Any] | None:
        with unit_of_work(self.runtime.inbox.sessions) as session:
            ticket = ticket_store.load_ticket(session, int(ref.split("-")[1]))
            if ticket is None:
                return None
            return ticket_json(ticket, "SP", outbox_store.for_ticket(session, ticket.id))

    def send(self, raw: bytes, *, to: str = SUPPORT, mail_from: str = "maria@customer.example") -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            assert client.sendmail(mail_from, [to], raw) == {}

    def show(self, ref: str) -> dict[str, Any]:
        done = ticketgate("tickets", "show", ref, "--json", config=self.config)
        assert done.returncode == 0, done.stderr
        return done.json()  # type: ignore[no-any-return]

    def until(self, ref: str, check: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.read(ref)
            if found is not None and check(found):
                return found
            assert time.monotonic() < deadline, f"{ref} never got there:\n{self.serve.output()}"
            time.sleep(0.1)

    def wait_count(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            with unit_of_work(self.runtime.inbox.sessions) as session:
                found = [ticket_summary_json(t, "SP") for t in ticket_store.queue(session)]
            if len(found) >= count:
                return sorted(found, key=lambda t: t["id"])
            assert time.monotonic() < deadline, self.serve.output()
            time.sleep(0.1)

    def mails(self, template_subject: str, to: str, *, count: int = 1, timeout: float = 30) -> list[Captured]:
        """The mails the relay took for `to` whose subject contains `template_subject`, once there are
        `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                mail
                for mail in self.sink.captured
                if mail.rcpt_tos == (to,) and template_subject in str(mail.message["Subject"])
            ]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"no mail to {to}:\n{self.serve.output()}"
            time.sleep(0.1)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def desk(tmp_path: Path, database_url: str, sink: SmtpSink) -> Iterator[Desk]:
    running = Desk(tmp_path, database_url, sink)
    try:
        yield running
    finally:
        running.stop()


def addresses(msg: EmailMessage, header: str) -> list[str]:
    return [address.lower() for _, address in email.utils.getaddresses(msg.get_all(header, []))]


def reply_to(msg: EmailMessage) -> str:
    return email.utils.parseaddr(msg["Reply-To"])[1]


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(msg: EmailMessage) -> str:
    body = msg.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def kinds(ticket: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in ticket["events"] if e["kind"] == kind]


def test_copies_quoting_and_cc(desk: Desk) -> None:
    # Maria opens a ticket To support and a colleague, Cc her boss, staff, triage, a sub-address of
    # ours and a machine: the two people become participants, nobody else does.
    desk.send(
        make_mail(
            "Payouts are stuck",
            "Our payouts have not arrived since Monday.\n",
            sender=MARIA,
            to=f"{SUPPORT}, Luis <luis@customer.example>",
            headers={
                "Cc": (
                    f"Boss <BOSS@customer.example>, {ANA}, {TRIAGE}, support+billing@smilepass.example, "
                    "noreply@customer.example, maria@customer.example"
                )
            },
        )
    )
    [ticket] = desk.wait_count(1)
    ref = ticket["ref"]
    shown = desk.show(ref)
    assert [(p["address"], p["name"], p["role"], p["added_by"]) for p in shown["participants"]] == [
        ("luis@customer.example", "Luis", "cc", "maria@customer.example"),
        ("boss@customer.example", "Boss", "cc", "maria@customer.example"),
    ]
    # The acknowledgement names who is copied; staff see it too.
    [ack] = desk.mails(f"[{ref}]", "maria@customer.example")
    assert "Luis <luis@customer.example>" in " ".join(text_of(ack.message).split())
    assert "Boss <boss@customer.example>" in " ".join(text_of(ack.message).split())
    [staff_new] = desk.mails(f"[{ref}]", TRIAGE)
    assert "Copied: Luis <luis@customer.example>, Boss <boss@customer.example>" in text_of(staff_new.message)
    staff_address = reply_to(staff_new.message)

    # Staff leave an internal note, then answer in public, copying one more colleague.
    desk.send(
        make_mail("x", "#note\nsecret: their bank is on our watch list\n", sender=ANA, to=staff_address),
        to=staff_address,
        mail_from="ana@smilepass.example",
    )
    desk.until(ref, lambda t: len(t["messages"]) == 2)
    desk.send(
        make_mail(
            "x",
            "We are looking into the payouts now.\n",
            sender=ANA,
            to=staff_address,
            headers={"Cc": "Eva <eva@customer.example>"},
        ),
        to=staff_address,
        mail_from="ana@smilepass.example",
    )
    shown = desk.until(ref, lambda t: len(t["messages"]) == 3)
    assert [p["address"] for p in shown["participants"]][-1] == "eva@customer.example"
    assert shown["participants"][-1]["added_by"] == "ana@smilepass.example"

    # One staff_reply per person, each showing the requester in To and the participants in Cc, each
    # delivered to its own recipient.
    copied = ["luis@customer.example", "boss@customer.example", "eva@customer.example"]
    for person in ["maria@customer.example", *copied]:
        [reply] = desk.mails("Payouts are stuck", person, count=1 + (person == "maria@customer.example"))[-1:]
        msg = reply.message
        assert addresses(msg, "To") == ["maria@customer.example"]
        assert addresses(msg, "Cc") == copied
        text = text_of(msg)
        # Under the staff text: the last public message before it, quoted; never the internal note.
        assert "We are looking into the payouts now." in text
        assert "> Our payouts have not arrived since Monday." in text
        assert "watch list" not in text and "watch list" not in html_of(msg)
        assert "<blockquote" in html_of(msg)
        assert text.index("We are looking into") < text.index("> Our payouts")

    # Luis answers his copy through its reply address: it joins the ticket as a cc message. His own Cc
    # adds nobody (only the requester and staff copy people on).
    luis_copy = desk.mails("Payouts are stuck", "luis@customer.example")[0].message
    luis_address = reply_to(luis_copy)
    desk.send(
        make_mail(
            "Re: x",
            "It is 3 payouts, 12,400 EUR in all.\n",
            sender="Luis <luis@customer.example>",
            to=luis_address,
            headers={"In-Reply-To": str(luis_copy["Message-ID"]), "Cc": "mallory@evil.example"},
        ),
        to=luis_address,
        mail_from="luis@customer.example",
    )
    shown = desk.until(ref, lambda t: len(t["messages"]) == 4)
    assert (shown["messages"][3]["role"], shown["messages"][3]["threaded_by"]) == ("cc", "reply-address")
    assert "mallory@evil.example" not in [p["address"] for p in shown["participants"]]

    # The requester takes her boss off; staff resolve it: status_changed to Maria, Cc the rest.
    desk.send(make_mail(f"Re: [{ref}] x", "#cc remove boss@customer.example\n", sender=MARIA))
    shown = desk.until(ref, lambda t: len(t["participants"]) == 2)
    assert kinds(shown, "participant_removed")[0]["new"] == "boss@customer.example"
    desk.send(make_mail("x", "#resolved\n", sender=ANA, to=staff_address), to=staff_address)
    desk.until(ref, lambda t: t["status"] == "Resolved")
    [status] = desk.mails("Payouts are stuck", "eva@customer.example", count=2)[1:]
    assert addresses(status.message, "To") == ["maria@customer.example"]
    assert addresses(status.message, "Cc") == ["luis@customer.example", "eva@customer.example"]
    assert "is now Resolved" in text_of(status.message)
    assert not [m for m in desk.sink.captured if m.rcpt_tos == ("boss@customer.example",) and "Resolved"
                in text_of(m.message)]  # fmt: skip

    # `tickets show` says who is copied in its text too.
    out = ticketgate("tickets", "show", ref, config=desk.config).stdout
    assert "copied: Luis <luis@customer.example> (added by maria@customer.example)" in out


def test_merge_threads_later_mail_to_the_ticket_merged_into(desk: Desk) -> None:
    desk.send(make_mail("Card declined", "My card ending 4242 is declined.\n", sender=MARIA))
    [first] = desk.wait_count(1)
    ref41 = first["ref"]
    # The same customer again, with a colleague copied: staff are told she has another ticket open.
    desk.send(
        make_mail(
            "Card still declined",
            "Still declined today.\n",
            sender=MARIA,
            message_id="<second@customer.example>",
            headers={"Cc": "Luis <luis@customer.example>"},
        )
    )
    tickets = desk.wait_count(2)
    ref42 = next(t["ref"] for t in tickets if t["ref"] != ref41)
    [staff_new] = desk.mails(f"[{ref42}]", TRIAGE)
    assert f"Also open from this requester: {ref41}" in text_of(staff_new.message)
    staff42 = reply_to(staff_new.message)
    [ack42] = desk.mails(f"[{ref42}]", "maria@customer.example")

    # Staff merge 42 into 41.
    desk.send(make_mail("x", f"#merge {ref41}\n", sender=ANA, to=staff42), to=staff42)
    merged = desk.until(ref42, lambda t: t["status"] == "Closed")
    assert merged["links"]["merged_into"] == ref41
    assert kinds(merged, "merged_into")[0]["new"] == ref41
    target = desk.show(ref41)
    assert target["links"]["merged_from"] == [ref42]
    assert [m["ticket"] for m in target["messages"]] == [ref41, ref42, ref42]
    assert [p["address"] for p in target["participants"]] == ["luis@customer.example"]
    [receipt] = desk.mails(f"[{ref42}]", "ana@smilepass.example")
    assert f"#merge {ref41}" in text_of(receipt.message)
    # The requester is told once, naming where it goes on.
    told = desk.mails(f"[{ref42}]", "maria@customer.example", count=2)
    merged_notices = [m for m in told if "merged into" in " ".join(text_of(m.message).split())]
    assert len(merged_notices) == 1 and ref41 in text_of(merged_notices[0].message)
    assert addresses(merged_notices[0].message, "Cc") == ["luis@customer.example"]

    # Later mail threaded to 42 (its reply address, its references, its subject reference) joins 41.
    desk.send(
        make_mail("Re: Card still declined", "Tried again.\n", sender=MARIA, to=reply_to(ack42.message)),
        to=reply_to(ack42.message),
    )
    desk.send(
        make_mail("Re: x", "And again.\n", sender=MARIA, headers={"In-Reply-To": "<second@customer.example>"})
    )
    desk.send(make_mail(f"Re: [{ref42}] Card still declined", "And once more.\n", sender=MARIA))
    target = desk.until(ref41, lambda t: len(t["messages"]) == 6)
    # By each mail's text, not its place: on PostgreSQL two worker processes may commit the three
    # in either order (a run under load saw the last two swapped).
    assert sorted((m["text"].strip(), m["ticket"], m["threaded_by"]) for m in target["messages"][3:]) == [
        ("And again.", ref41, "references"),
        ("And once more.", ref41, "subject-ref"),
        ("Tried again.", ref41, "reply-address"),
    ]
    assert len(desk.wait_count(2)) == 2  # no new ticket opened
    assert len(desk.read(ref42)["messages"]) == 2  # type: ignore[index]  # the merged ticket took nothing more

    # Refused: the same ticket, an unknown one, a Closed one; each with its reason in the receipt.
    staff41 = reply_to(desk.mails(f"[{ref41}]", TRIAGE)[0].message)
    desk.send(
        make_mail("x", f"#merge {ref41}\n#merge SP-999\n#merge {ref42}\n", sender=ANA, to=staff41), to=staff41
    )
    target = desk.until(ref41, lambda t: len(kinds(t, "command_refused")) == 3)
    assert target["status"] != "Closed" and target["links"]["merged_into"] is None
    [receipt41] = desk.mails(f"[{ref41}]", "ana@smilepass.example")
    receipt_text = " ".join(text_of(receipt41.message).split())
    assert "cannot be merged into itself" in receipt_text
    assert "no ticket SP-999" in receipt_text
    assert f"{ref42} is Closed" in receipt_text


def test_the_cli_merges_and_copies_like_a_staff_mail(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    files = []
    for subject in ("First", "Second"):
        files.append(tmp_path / f"{subject}.eml")
        files[-1].write_bytes(make_mail(subject, sender=MARIA))
    assert ticketgate("ingest", *map(str, files), config=config).returncode == 0
    done = ticketgate(
        "tickets", "update", "SP-2", "--cc-add", "luis@customer.example", "--merge", "SP-1",
        "--as", "ana@smilepass.example", "--json", config=config,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    merged = done.json()
    assert (merged["status"], merged["links"]["merged_into"]) == ("Closed", "SP-1")
    target = ticketgate("tickets", "show", "SP-1", "--json", config=config).json()
    assert target["links"]["merged_from"] == ["SP-2"]
    assert [p["address"] for p in target["participants"]] == ["luis@customer.example"]
    assert [m["ticket"] for m in target["messages"]] == ["SP-1", "SP-2", "SP-2"]
    # Refused as a mail would be: nothing changes, one line, exit 65.
    refused = ticketgate(
        "tickets", "update", "SP-1", "--merge", "SP-2", "--cc-add", "ana@smilepass.example",
        "--as", "ana@smilepass.example", config=config,
    )  # fmt: skip
    assert refused.returncode == 65
    assert "SP-2 is Closed" in refused.stderr and "is a staff address" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


# --- property: generated copies through the real pipeline and store ------------------------------


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """The processor `serve` builds, on SQLite or PostgreSQL, driven mail by mail."""
    extra = "[limits]\nnew_tickets_per_sender_per_hour = 100000\n"
    config = write_config(tmp_path, database_url, extra)
    # The staff side of tests/unit/test_copies.py, whose rule `expected` is.
    text = config.read_text(encoding="utf-8").replace(
        'addresses = ["ana@smilepass.example"]\ntriage = "triage@smilepass.example"',
        'addresses = ["ana@smilepass.example", "ben@smilepass.example"]\n'
        'triage = "triage@smilepass.example"\nsecurity_contact = "security@smilepass.example"\n'
        'on_call = "oncall@smilepass.example"',
    )
    config.write_text(text, encoding="utf-8")
    runtime = build_runtime(load_settings(config, environ={}))
    try:
        yield runtime
    finally:
        runtime.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(to=entries, cc=entries, reply_cc=entries, reply_by=st.sampled_from(["requester", "staff", "stranger"]))
def test_generated_copies_make_exactly_the_expected_participants(
    pipeline: Any,
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]],
    reply_cc: list[tuple[str, str]],
    reply_by: str,
) -> None:
    processor = pipeline.processor("test")

    def deliver(raw: bytes, rcpt: str, sender: str) -> Any:
        [inbox_id] = pipeline.inbox.add_many([(raw, Envelope(sender, (rcpt,), "smtp"))])
        [result] = processor.process_ids([inbox_id])
        return result

    opened = deliver(mail_with(to, cc, message_id=f"<{uuid4().hex}@customer.example>"), SUPPORT, REQUESTER)
    assert opened.outcome == "ticket"

    def participants() -> list[str]:
        with unit_of_work(pipeline.inbox.sessions) as session:
            ticket = ticket_store.load_ticket(session, opened.ticket_id)
            assert ticket is not None
            return [p["address"] for p in ticket_json(ticket, "SP")["participants"]]

    assert participants() == expected(to + cc)

    # A reply with a Cc: the requester's and authenticated staff's copy people on; a stranger's
    # (here on the requester's reply address, which gives no rights) copies nobody.
    sender = {"requester": REQUESTER, "staff": "ana@smilepass.example", "stranger": "eve@evil.example"}[
        reply_by
    ]
    audience = "staff" if reply_by == "staff" else "requester"
    rcpt = reply_address(
        SUPPORT, prefix="SP", ticket_id=opened.ticket_id, audience=audience, secret=TEST_SECRET
    )
    raw = mail_with([], reply_cc, sender=sender, to_first=rcpt, message_id=f"<{uuid4().hex}@x.example>")
    assert deliver(raw, rcpt, sender).ticket_id == opened.ticket_id
    before = expected(to + cc)
    added = [a for a in expected(reply_cc) if a not in before] if reply_by != "stranger" else []
    assert participants() == before + added


def test_erasing_a_participant_takes_them_off_every_ticket(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    opening = make_mail("Payouts", sender=MARIA, headers={"Cc": "Luis Ortega <luis@customer.example>"})
    assert ticketgate("ingest", config=config, stdin=opening).returncode == 0
    erased = ticketgate("tickets", "erase", "--requester", "luis@customer.example", "--yes", config=config)
    assert erased.returncode == 0, erased.stderr
    shown = ticketgate("tickets", "show", "SP-1", "--json", config=config).json()
    assert shown["participants"] == []
    assert "luis@customer.example" not in str(shown["events"]) and "Ortega" not in str(shown["events"])
    assert [e["field"] for e in shown["events"] if e["kind"] == "erased"] == ["participant"]
