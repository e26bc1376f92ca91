"""Whole conversations over real SMTP (SPEC §4, §5): `ticketgate serve` on a loopback port, mail in by
smtplib, notifications read from the outgoing folder (their Reply-To and Message-ID used exactly as a
mail client would), tickets read back with `ticketgate tickets show --json`."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import email.utils
import smtplib
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.daemon.scheduler import AutoCloser
from gateway.domain import Envelope
from gateway.pipeline.processor import Processor
from gateway.present import ticket_json
from gateway.reply_address import reply_address
from gateway.store import tickets as ticket_store
from gateway.store.db import unit_of_work
from gateway.store.models import OutboxRow, utcnow
from tests.helpers import (
    STORE_DOES_NOT_MATTER,
    TEST_SECRET,
    ServeProcess,
    free_port,
    make_mail,
    relayed_mails,
    ticketgate,
    write_config,
)

SUPPORT = "support@smilepass.example"
MARIA = "Maria Lopez <maria@customer.example>"
ANA = "Ana <ana@smilepass.example>"
TRIAGE = "triage@smilepass.example"


class Desk:
    """A running `ticketgate serve`, and what a customer and staff see of it."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        port = free_port()
        self.config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
        self.outgoing = tmp_path / "outgoing"
        self.serve = ServeProcess(["--config", str(self.config)], tmp_path, port)
        self.port = port

    def output(self) -> str:
        return self.serve.output()

    def stop(self) -> None:
        self.serve.stop()

    def send(self, raw: bytes, *, to: str = SUPPORT, mail_from: str = "maria@customer.example") -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            assert client.sendmail(mail_from, [to], raw) == {}

    def show(self, ref: str) -> dict[str, Any]:
        done = ticketgate("tickets", "show", ref, "--json", config=self.config)
        assert done.returncode == 0, done.stderr
        return done.json()  # type: ignore[no-any-return]

    def tickets(self) -> list[dict[str, Any]]:
        return ticketgate("tickets", "list", "--json", config=self.config).json()  # type: ignore[no-any-return]

    def wait(self, ref: str, *, messages: int, timeout: float = 30) -> dict[str, Any]:
        """The ticket once it has `messages` messages (the daemon works on its own time)."""
        deadline = time.monotonic() + timeout
        while True:
            done = ticketgate("tickets", "show", ref, "--json", config=self.config)
            if done.returncode == 0 and len(done.json()["messages"]) >= messages:
                # Read again: on PostgreSQL (READ COMMITTED) the read that saw the new message may
                # have read the ticket's fields just before the same commit.
                return self.show(ref)
            assert time.monotonic() < deadline, f"{ref} never reached {messages} messages:\n{self.output()}"
            time.sleep(0.2)

    def wait_count(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.tickets()
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.2)

    def notification(
        self, ref: str, template: str, to: str, *, nth: int = -1, timeout: float = 30
    ) -> EmailMessage:
        """The delivered notification `template` to `to` on ticket `ref`, as the recipient got it."""
        deadline = time.monotonic() + timeout
        while True:
            rows = [
                n
                for n in self.show(ref)["notifications"]
                if n["template"] == template and n["to"].lower() == to.lower()
            ]
            if rows and (nth < 0 or len(rows) > nth):
                wanted = rows[nth]["message_id"]
                for path in relayed_mails(self.outgoing):
                    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                    if mail["Message-ID"] == f"<{wanted}>":
                        assert isinstance(mail, EmailMessage)
                        return mail
            assert time.monotonic() < deadline, f"no {template} to {to} on {ref}:\n{self.output()}"
            time.sleep(0.2)


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Iterator[Desk]:
    running = Desk(tmp_path, database_url)
    try:
        yield running
    finally:
        running.stop()


def quoted(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines())


def reply_to(notification: EmailMessage) -> str:
    return email.utils.parseaddr(notification["Reply-To"])[1]


def events(ticket: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in ticket["events"] if e["kind"] == kind]


def test_a_whole_conversation(desk: Desk) -> None:
    # A customer writes; the acknowledgement tells her how to reply.
    desk.send(make_mail("Payment plan ADD button does nothing", sender=MARIA))
    [first] = desk.wait_count(1)
    ref = first["ref"]
    ack = desk.notification(ref, "ticket_created", "maria@customer.example")
    requester_address = reply_to(ack)
    assert requester_address.startswith(f"support+{ref}.")

    # She replies to the acknowledgement, through its reply address, quoting it whole.
    ack_text = "We received your request."
    body = f"Also: it happens in Firefox and Chrome.\n\nOn Mon, Ticketgate wrote:\n{quoted(ack_text)}\n"
    desk.send(
        make_mail(f"Re: {ack['Subject']}", body, sender=MARIA, to=requester_address), to=requester_address
    )
    ticket = desk.wait(ref, messages=2)
    reply = ticket["messages"][1]
    assert (reply["role"], reply["threaded_by"], reply["visibility"]) == (
        "requester",
        "reply-address",
        "public",
    )
    assert reply["text"] == "Also: it happens in Firefox and Chrome."
    assert ticket["status"] == "Open"

    # Staff triage through their reply address with commands, and answer her.
    staff_address = reply_to(desk.notification(ref, "staff_new_ticket", TRIAGE))
    triage = "#priority high\n#billing\n#assign me\nHi Maria, which browser version is that?\n"
    desk.send(make_mail(f"Re: [{ref}] x", triage, sender=ANA, to=staff_address), to=staff_address)
    ticket = desk.wait(ref, messages=3)
    answer = ticket["messages"][2]
    assert (answer["role"], answer["visibility"], answer["threaded_by"]) == (
        "staff",
        "public",
        "reply-address",
    )
    assert answer["text"] == "Hi Maria, which browser version is that?"
    assert (ticket["priority"], ticket["category"], ticket["assignee"], ticket["status"]) == (
        "High",
        "Billing & Payments",
        "ana@smilepass.example",
        "Waiting on user",
    )
    assert {(e["kind"], e["new"]) for e in ticket["events"]} >= {
        ("priority_changed", "High"),
        ("category_changed", "Billing & Payments"),
        ("assigned", "ana@smilepass.example"),
        ("status_changed", "Waiting on user"),
    }
    receipt = desk.notification(ref, "command_result", "ana@smilepass.example")
    body = receipt.get_body(("plain",))
    assert body is not None and "#priority high" in body.get_content()
    staff_reply = desk.notification(ref, "staff_reply", "maria@customer.example")

    # The customer answers with In-Reply-To alone: plain support@, no reference in the subject.
    desk.send(
        make_mail(
            "browser", "Firefox 128.\n", sender=MARIA, headers={"In-Reply-To": staff_reply["Message-ID"]}
        )
    )
    ticket = desk.wait(ref, messages=4)
    assert ticket["messages"][3]["threaded_by"] == "references"
    assert ticket["status"] == "In Progress"

    # Resolved by staff; the customer says it broke again (a reopen); staff close it with a command.
    desk.send(make_mail("x", "#resolved\nFixed in 2.3.1.\n", sender=ANA, to=staff_address), to=staff_address)
    assert desk.wait(ref, messages=5)["status"] == "Resolved"
    # The requester is told (the status rides on the staff reply: one mail, not two).
    desk.notification(ref, "staff_reply", "maria@customer.example", nth=1)
    desk.send(make_mail(f"Re: [{ref}] x", "Still broken for me.\n", sender=MARIA))
    ticket = desk.wait(ref, messages=6)
    assert ticket["messages"][5]["threaded_by"] == "subject-ref"
    assert ticket["status"] == "In Progress"
    assert [(e["old"], e["new"]) for e in events(ticket, "reopened")] == [("Resolved", "In Progress")]
    desk.send(make_mail("x", "#close\n", sender=ANA, to=staff_address), to=staff_address)
    ticket = desk.wait(ref, messages=7)
    assert ticket["status"] == "Closed"
    assert ticket["messages"][6]["visibility"] == "internal"  # commands only: not a public reply

    # Her reply to the Closed ticket opens a follow-up that links to it.
    desk.send(
        make_mail("Re: thanks", "One more question.\n", sender=MARIA, to=requester_address),
        to=requester_address,
    )
    tickets = desk.wait_count(2)
    [follow_up] = [t for t in tickets if t["ref"] != ref]
    assert follow_up["links"]["follow_up_of"] == ref
    assert follow_up["status"] == "Open"
    assert desk.show(follow_up["ref"])["messages"][0]["threaded_by"] == "new"
    assert len(desk.show(ref)["messages"]) == 7


@STORE_DOES_NOT_MATTER
def test_spoofed_staff_is_a_customer(desk: Desk) -> None:
    desk.send(
        make_mail("Refund please", "I was charged twice.\n", sender=MARIA, message_id="<m1@customer.example>")
    )
    [ticket] = desk.wait_count(1)
    ref = ticket["ref"]
    # From forged as staff, no reply token, no signature: it threads (by In-Reply-To) but acts for nobody.
    desk.send(
        make_mail(
            "Re: Refund please",
            "#close\n#assign ana@smilepass.example\nClosing this.\n",
            sender=ANA,
            headers={"In-Reply-To": "<m1@customer.example>"},
        ),
        mail_from="ana@smilepass.example",
    )
    shown = desk.wait(ref, messages=2)
    spoof = shown["messages"][1]
    assert (spoof["role"], spoof["visibility"], spoof["threaded_by"]) == ("cc", "public", "references")
    assert shown["status"] == "Open" and shown["assignee"] is None
    [why] = events(shown, "unauthenticated_staff")
    assert "not authenticated" in why["new"]
    refused = events(shown, "command_refused")
    assert [e["new"].split(" — ")[0] for e in refused] == ["#close", "#assign ana@smilepass.example"]
    assert all("not authenticated" in e["new"] for e in refused)
    assert not [n for n in shown["notifications"] if n["template"] in ("command_result", "staff_reply")]

    # A requester's reply address grants no staff rights either.
    requester_address = reply_address(
        SUPPORT, prefix="SP", ticket_id=shown["id"], audience="requester", secret=TEST_SECRET
    )
    desk.send(make_mail("x", "#resolved\n", sender=ANA, to=requester_address), to=requester_address)
    shown = desk.wait(ref, messages=3)
    assert shown["status"] == "Open"
    assert shown["messages"][2]["role"] == "cc"


@STORE_DOES_NOT_MATTER
def test_hijack_attempts_with_a_copied_reference(desk: Desk) -> None:
    desk.send(
        make_mail(
            "My card was declined",
            "Card ending 4242.\n",
            sender=MARIA,
            headers={"Cc": "Boss <boss@customer.example>"},
        )
    )
    [ticket] = desk.wait_count(1)
    ref, ticket_id = ticket["ref"], ticket["id"]

    # A stranger copies the reference into a subject: a ticket of their own, flagged for staff.
    desk.send(make_mail(f"Re: [{ref}] My card was declined", "#close\nshow me\n", sender="eve@evil.example"))
    # ... and moves a reply token minted for another ticket onto this one.
    other = reply_address(SUPPORT, prefix="SP", ticket_id=ticket_id + 1, audience="staff", secret=TEST_SECRET)
    moved = other.replace(f"SP-{ticket_id + 1}.", f"SP-{ticket_id}.")
    desk.send(
        make_mail("hello", "#close\n", sender="eve@evil.example", to=moved),
        to=moved,
        mail_from="eve@evil.example",
    )
    tickets = desk.wait_count(3)
    strangers = [t for t in tickets if t["ref"] != ref]
    assert len(strangers) == 2
    assert all(t["requester"]["address"] == "eve@evil.example" for t in strangers)
    assert sorted(str(t["links"]["possible_follow_up_of"]) for t in strangers) == ["None", ref]
    original = desk.show(ref)
    assert len(original["messages"]) == 1 and original["status"] == "Open"

    # Someone the requester copied is on the ticket, so their subject reference threads, as cc.
    desk.send(make_mail(f"[{ref}] any news?", "We need this fixed.\n", sender="boss@customer.example"))
    shown = desk.wait(ref, messages=2)
    assert (shown["messages"][1]["role"], shown["messages"][1]["threaded_by"]) == ("cc", "subject-ref")


# --- in process: auto-close (time moved by the clock), out-of-office, DKIM-signed staff -----------


class InProcess:
    """The processor and the scheduler as `serve` builds them, driven mail by mail."""

    def __init__(self, tmp_path: Path, database_url: str, *, dkim_dns: Any = None) -> None:
        settings = load_settings(write_config(tmp_path, database_url), environ={})
        self.runtime = build_runtime(settings)
        self.processor = self.runtime.processor("test")
        if dkim_dns is not None:  # the processor `serve` builds, looking DKIM keys up in `dkim_dns`
            deps = dataclasses.replace(self.runtime.deps, dkim_dns=dkim_dns)
            self.processor = Processor(deps, worker=self.processor.worker)

    def deliver(self, raw: bytes, *, to: str = SUPPORT) -> Any:
        sender = email.utils.parseaddr(email.message_from_bytes(raw)["From"])[1]
        [inbox_id] = self.runtime.inbox.add_many([(raw, Envelope(sender, (to,), "smtp"))])
        [result] = self.processor.process_ids([inbox_id])
        return result

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        with unit_of_work(self.runtime.inbox.sessions) as session:
            ticket = ticket_store.load_ticket(session, ticket_id)
            assert ticket is not None
            rows = session.scalars(select(OutboxRow).where(OutboxRow.ticket_id == ticket_id)).all()
            return ticket_json(ticket, "SP", rows)

    def staff_address(self, ticket_id: int) -> str:
        return reply_address(SUPPORT, prefix="SP", ticket_id=ticket_id, audience="staff", secret=TEST_SECRET)


@pytest.fixture
def desk_in_process(tmp_path: Path, database_url: str) -> Iterator[InProcess]:
    running = InProcess(tmp_path, database_url)
    try:
        yield running
    finally:
        running.runtime.close()


@STORE_DOES_NOT_MATTER
def test_a_staff_address_named_only_by_sender_gets_no_staff_rights(desk_in_process: InProcess) -> None:
    desk = desk_in_process
    opened = desk.deliver(make_mail("Export fails", sender=MARIA, message_id="<n1@customer.example>"))
    # No From at all: the requester rule falls back to Sender, but staff rights stay with From, even
    # on the staff reply address.
    raw = (
        b"Sender: Ana <ana@smilepass.example>\nTo: support@smilepass.example\nSubject: x\n"
        b"Message-ID: <nofrom@smilepass.example>\n\n#resolved\nFixed.\n"
    )
    envelope = Envelope("ana@smilepass.example", (desk.staff_address(opened.ticket_id),), "smtp")
    [inbox_id] = desk.runtime.inbox.add_many([(raw, envelope)])
    [result] = desk.processor.process_ids([inbox_id])
    assert result.outcome.value == "reply"
    shown = desk.ticket(opened.ticket_id)
    assert shown["status"] == "Open"
    [why] = [e for e in shown["events"] if e["kind"] == "unauthenticated_staff"]
    assert "named only by Sender" in why["new"]


def test_auto_close_after_the_quiet_days(desk_in_process: InProcess) -> None:
    desk = desk_in_process
    opened = desk.deliver(make_mail("Export fails", sender=MARIA, message_id="<e1@customer.example>"))
    resolved = desk.deliver(
        make_mail("x", "#resolved\nFixed.\n", sender=ANA), to=desk.staff_address(opened.ticket_id)
    )
    assert resolved.outcome.value == "reply"
    other = desk.deliver(make_mail("Another", sender="bob@customer.example"))
    desk.deliver(make_mail("x", "#resolved\n", sender=ANA), to=desk.staff_address(other.ticket_id))
    # Bob's answer reopens his ticket, so only Maria's stays Resolved.
    desk.deliver(
        make_mail(f"Re: [SP-{other.ticket_id}] Another", "No it is not.\n", sender="bob@customer.example")
    )
    # An out-of-office on Maria's ticket is recorded there and changes nothing (nor the clock).
    out_of_office = desk.deliver(
        make_mail(
            "Automatic reply: Export fails",
            "I am away until Monday.\n",
            sender=MARIA,
            headers={"Auto-Submitted": "auto-replied", "In-Reply-To": "<e1@customer.example>"},
        )
    )
    assert (out_of_office.outcome.value, out_of_office.ticket_id) == ("auto_reply", opened.ticket_id)

    settings = desk.runtime.settings
    now = utcnow()

    def closer(days_later: float) -> AutoCloser:
        return AutoCloser(
            desk.runtime.inbox.sessions,
            settings,
            notifier=desk.runtime.deps.notifier,
            clock=lambda: now + timedelta(days=days_later),
        )

    assert closer(6.9).run_once() == []
    assert closer(7.01).run_once() == [opened.ticket_id]
    assert closer(8).run_once() == []  # done once

    maria = desk.ticket(opened.ticket_id)
    assert maria["status"] == "Closed"
    [closed] = events(maria, "auto_closed")
    assert (closed["old"], closed["new"], closed["actor"]) == ("Resolved", "Closed", "ticketgate")
    assert [n["template"] for n in maria["notifications"] if n["template"] == "status_changed"] == [
        "status_changed"
    ]
    assert [m["kind"] for m in maria["messages"]] == ["mail", "mail", "auto_reply"]
    assert desk.ticket(other.ticket_id)["status"] == "In Progress"


@STORE_DOES_NOT_MATTER
def test_staff_authenticated_by_dkim_from_their_own_mailbox(tmp_path: Path, database_url: str) -> None:
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}".encode()

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        return record if name == b"mail._domainkey.smilepass.example." else None

    desk = InProcess(tmp_path, database_url, dkim_dns=lookup)
    try:
        opened = desk.deliver(make_mail("Login loop", sender=MARIA, message_id="<l1@customer.example>"))
        raw = make_mail(
            "Re: Login loop",
            "#in-progress\nLooking into it.\n",
            sender=ANA,
            headers={"In-Reply-To": "<l1@customer.example>"},
        )
        signed = (
            dkim.sign(raw, b"mail", b"smilepass.example", private, include_headers=[b"from", b"subject"])
            + raw
        )
        desk.deliver(signed)
        ticket = desk.ticket(opened.ticket_id)
        assert ticket["messages"][1]["role"] == "staff"
        assert ticket["status"] == "In Progress"
        assert not events(ticket, "unauthenticated_staff")
    finally:
        desk.runtime.close()
