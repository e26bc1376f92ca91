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

import pytest

from tests.helpers import ServeProcess, free_port, make_mail, ticketgate, write_config
from tests.integration.smtp_sink import Captured, SmtpSink

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
            done = ticketgate("tickets", "show", ref, "--json", config=self.config)
            if done.returncode == 0 and check(done.json()):
                return done.json()  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"{ref} never got there:\n{self.serve.output()}"
            time.sleep(0.2)

    def wait_count(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = ticketgate("tickets", "list", "--json", config=self.config).json()
            if len(found) >= count:
                return found  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, self.serve.output()
            time.sleep(0.2)

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
            time.sleep(0.2)


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
        running.serve.stop()


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
    assert [(m["ticket"], m["threaded_by"]) for m in target["messages"][3:]] == [
        (ref41, "reply-address"),
        (ref41, "references"),
        (ref41, "subject-ref"),
    ]
    assert len(desk.wait_count(2)) == 2  # no new ticket opened
    assert len(desk.show(ref42)["messages"]) == 2  # the merged ticket took nothing more

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
    for subject in ("First", "Second"):
        assert ticketgate("ingest", config=config, stdin=make_mail(subject, sender=MARIA)).returncode == 0
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
    # Refused as a mail would be: nothing changes, one line, exit 65.
    refused = ticketgate(
        "tickets", "update", "SP-1", "--merge", "SP-2", "--as", "ana@smilepass.example", config=config
    )
    assert refused.returncode == 65
    assert "SP-2 is Closed" in refused.stderr and "Traceback" not in refused.stderr
    staff_copy = ticketgate(
        "tickets", "update", "SP-1", "--cc-add", "ana@smilepass.example", "--as", "ana@smilepass.example",
        config=config,
    )  # fmt: skip
    assert staff_copy.returncode == 65 and "is a staff address" in staff_copy.stderr
