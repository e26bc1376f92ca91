"""A customer's own tickets by mail (SPEC §12): a mail to `support+tickets@` over SMTP into a real
`ticketgate serve`, the `my_tickets` answer caught by a real SMTP sink and read as the customer's
mail client would; the inbox and the tickets read back with the real CLI; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.daemon.runtime import Runtime, build_runtime
from tests.helpers import ServeProcess, free_port, make_mail, ticketgate, write_config
from tests.integration.smtp_sink import Captured, SmtpSink
from tests.integration.waits import wait_until_inbox_settled, wait_until_outbox_settled

SUPPORT = "support@smilepass.example"
TICKETS = "support+tickets@smilepass.example"
MARIA = "maria@customer.example"
BOB = "bob@customer.example"


@dataclass
class Desk:
    """A running `ticketgate serve` whose notifications go to `sink`. The waits read the database in
    this process; what is asserted comes from the CLI and the sink."""

    serve: ServeProcess
    config: Path
    sink: SmtpSink
    runtime: Runtime

    def send(self, raw: bytes, *, to: str = SUPPORT, mail_from: str = MARIA) -> None:
        with smtplib.SMTP("127.0.0.1", self.serve.port, timeout=30) as client:
            assert client.sendmail(mail_from, [to], raw) == {}

    def settled(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """`inbox list --json` once `count` mails are in and none is pending."""
        wait_until_inbox_settled(
            self.runtime.inbox.sessions, count, output=self.serve.output, timeout=timeout
        )
        run = ticketgate("inbox", "list", "--json", config=self.config)
        assert run.returncode == 0, run.stderr
        return run.json()  # type: ignore[no-any-return]

    def sent_to(self, address: str) -> list[Captured]:
        return [c for c in self.sink.captured if address in c.rcpt_tos]

    def lists_to(self, address: str) -> list[Captured]:
        return [c for c in self.sent_to(address) if not re.search(r"\[SP-\d+\]", c.message["Subject"])]

    def wait_lists(self, address: str, count: int, timeout: float = 30) -> list[Captured]:
        deadline = time.monotonic() + timeout
        while len(found := self.lists_to(address)) < count:
            assert time.monotonic() < deadline, f"{len(found)} lists to {address}, wanted {count}"
            time.sleep(0.2)
        return found

    def quiet(self) -> None:
        """Wait until the outbox has nothing left to send, so 'nothing was sent' means something."""
        wait_until_outbox_settled(self.runtime.inbox.sessions)

    def tickets(self) -> list[dict[str, Any]]:
        run = ticketgate("tickets", "list", "--json", config=self.config)
        assert run.returncode == 0, run.stderr
        return run.json()  # type: ignore[no-any-return]


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Iterator[Desk]:
    with SmtpSink() as sink:
        port = free_port()
        config = write_config(tmp_path, database_url, "[views]\nmy_tickets_per_hour = 2\n",
                              listen=f"127.0.0.1:{port}")  # fmt: skip
        text = config.read_text(encoding="utf-8")
        relay = f'relay = "dir:{tmp_path / "outgoing"}"'
        config.write_text(text.replace(relay, f'relay = "smtp://{sink.host}:{sink.port}"'), encoding="utf-8")
        serve = ServeProcess(["--config", str(config)], tmp_path, port)
        runtime = build_runtime(load_settings(config))
        try:
            yield Desk(serve, config, sink, runtime)
        finally:
            runtime.close()
            serve.stop()


class _Table(HTMLParser):
    """The rows of the first table in an HTML part, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_rows(message: EmailMessage) -> list[list[str]]:
    part = message.get_body(("html",))
    assert part is not None
    table = _Table()
    table.feed(part.get_content())
    return table.rows


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def text_refs(message: EmailMessage) -> list[str]:
    """The refs that start the rows of the plain-text table, in order."""
    return re.findall(r"^(SP-\d+) ", text_of(message), flags=re.MULTILINE)


def test_a_customer_gets_a_table_of_their_own_tickets_at_their_from_address_only(desk: Desk) -> None:
    desk.send(make_mail("Cannot log in", "The login page spins.", sender=f"Maria Lopez <{MARIA}>"))
    desk.send(make_mail("[urgent] Charged twice", "Two charges.", sender=f"Maria Lopez <{MARIA}>",
                        message_id="<charged@customer.example>"))  # fmt: skip
    desk.send(make_mail("[feature] Dark mode", "Please.", sender=f"Maria Lopez <{MARIA}>"))
    desk.send(make_mail("Bob's problem", "Hi.", sender=f"Bob <{BOB}>"), mail_from=BOB)
    desk.settled(4)
    done = ticketgate("tickets", "update", "SP-1", "--status", "closed", "--as", "ana@smilepass.example",
                      config=desk.config)  # fmt: skip
    assert done.returncode == 0, done.stderr

    # She asks from her own From, but everything else in the mail points elsewhere: Reply-To and
    # Sender name Bob, the envelope sender is a stranger, and the subject and In-Reply-To name SP-2.
    ask = make_mail(
        "Re: [SP-2] Charged twice", "What are my tickets?", sender=f"Maria Lopez <{MARIA}>",
        to=TICKETS, message_id="<ask.1@customer.example>",
        headers={"Reply-To": BOB, "Sender": BOB, "In-Reply-To": "<charged@customer.example>",
                 "References": "<charged@customer.example>"},
    )  # fmt: skip
    desk.send(ask, to=TICKETS, mail_from="someone@elsewhere.example")
    listed = desk.settled(5)
    asked = listed[-1]
    assert (asked["outcome"], asked["ticket"]) == ("my_tickets", None)
    assert "ticket list queued for maria@customer.example" in asked["reason"]

    (answer,) = desk.wait_lists(MARIA, 1)
    message = answer.message
    assert answer.rcpt_tos == (MARIA,)
    assert [address for _, address in getaddresses(message.get_all("To", []))] == [MARIA]
    assert message["Subject"] == "Your tickets with SmilePass Support"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["In-Reply-To"] == "<ask.1@customer.example>"
    assert re.fullmatch(r"<tg\.my_tickets\.o\d+\.[0-9a-f]+@smilepass\.example>", message["Message-ID"])
    assert parseaddr(message["Reply-To"])[1] == SUPPORT
    # Open ones first, newest first; the closed one last; Bob's not at all.
    assert text_refs(message) == ["SP-3", "SP-2", "SP-1"]
    rows = html_rows(message)
    assert rows[0] == ["Ref", "Priority", "Date", "Title", "Category", "Status"]
    assert [row[0] for row in rows[1:]] == ["SP-3", "SP-2", "SP-1"]
    today = asked["received_at"][:10]
    assert rows[2] == ["SP-2", "Urgent", today, "Charged twice", "Technical Issues & Bugs", "Open"]
    assert rows[3][1:] == ["Low", today, "Cannot log in", "Technical Issues & Bugs", "Closed"]
    assert rows[1][3:5] == ["Dark mode", "Feature Requests"]
    text = text_of(message)
    assert "Hello Maria Lopez," in text and "(2 open of 3)" in text
    assert max(len(line) for line in text.splitlines()) <= 72
    assert "Bob's problem" not in text

    # Nothing threaded, nothing opened; Bob and the envelope sender got nothing.
    assert [t["ref"] for t in desk.tickets()] == ["SP-2", "SP-1", "SP-3", "SP-4"]
    shown = ticketgate("tickets", "show", "SP-2", "--json", config=desk.config).json()
    assert len(shown["messages"]) == 1
    desk.quiet()
    assert desk.lists_to(BOB) == [] and desk.sent_to("someone@elsewhere.example") == []

    # Bob sees his own; a stranger hears that there is nothing under that address.
    desk.send(make_mail("tickets?", "", sender=f"Bob <{BOB}>", to=TICKETS), to=TICKETS, mail_from=BOB)
    stranger = "new@customer.example"
    desk.send(make_mail("list", "", sender=stranger, to=TICKETS), to=TICKETS, mail_from=stranger)
    (bobs,) = desk.wait_lists(BOB, 1)
    assert text_refs(bobs.message) == ["SP-4"]
    (nothing,) = desk.wait_lists(stranger, 1)
    assert nothing.message["Subject"] == "No tickets with SmilePass Support"
    assert "you have no tickets with us under this address" in text_of(nothing.message)
    assert html_rows(nothing.message) == []
    assert len(desk.tickets()) == 4
    table = ticketgate("inbox", "list", "--outcome", "my_tickets", config=desk.config)
    assert table.returncode == 0 and table.stdout.count("my_tickets") == 3
    assert "ticket list queued for bob@customer.example" in table.stdout  # the reason, under its row


def test_automated_mail_gets_no_list_and_a_sender_gets_at_most_the_hourly_limit(desk: Desk) -> None:
    desk.send(make_mail("My one ticket", "Hello.", sender=MARIA))
    desk.settled(1)
    for n in range(3):  # the test config allows 2 lists an hour
        desk.send(make_mail(f"list {n}", "", sender=MARIA, to=TICKETS), to=TICKETS)
    automated = [
        (MARIA, make_mail("a", "", sender=MARIA, to=TICKETS, headers={"Auto-Submitted": "auto-generated"})),
        (MARIA, make_mail("b", "", sender=MARIA, to=TICKETS, headers={"Precedence": "bulk"})),
        (MARIA, make_mail("c", "", sender=MARIA, to=TICKETS, headers={"List-Id": "<news.customer.example>"})),
        ("noreply@shop.example", make_mail("d", "", sender="noreply@shop.example", to=TICKETS)),
        (SUPPORT, make_mail("e", "", sender=SUPPORT, to=TICKETS)),
        ("", make_mail("f", "", sender="pat@customer.example", to=TICKETS)),
    ]
    for mail_from, raw in automated:
        desk.send(raw, to=TICKETS, mail_from=mail_from)
    listed = desk.settled(10)

    asks = listed[1:]
    assert [row["outcome"] for row in asks] == ["my_tickets"] * 9
    assert ["queued" in row["reason"] for row in asks[:3]] == [True, True, False]
    assert "sent 2 ticket lists in the hour before this mail (limit 2)" in asks[2]["reason"]
    for row in asks[3:]:
        assert "not sent: automated mail" in row["reason"], row
    assert "Auto-Submitted" in asks[3]["reason"] and "null envelope sender" in asks[8]["reason"]

    desk.wait_lists(MARIA, 2)
    desk.quiet()
    assert len(desk.lists_to(MARIA)) == 2
    assert desk.sent_to("noreply@shop.example") == [] and desk.sent_to("pat@customer.example") == []
    assert desk.lists_to(SUPPORT) == []
    assert [t["ref"] for t in desk.tickets()] == ["SP-1"]


# --- the staff queue by mail: #queue and #queue mine --------------------------------------------

ANA = "ana@smilepass.example"
TRIAGE = "triage@smilepass.example"
TRUSTED_MX = "mx.smilepass.example"


@pytest.fixture
def staff_desk(tmp_path: Path, database_url: str) -> Iterator[Desk]:
    """As `desk`, with our own MX's Authentication-Results trusted, so staff can write to the plain
    address and be authenticated."""
    with SmtpSink() as sink:
        port = free_port()
        config = write_config(tmp_path, database_url, listen=f"127.0.0.1:{port}")
        text = config.read_text(encoding="utf-8")
        text = text.replace(
            f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"'
        )
        text = text.replace(
            f'triage = "{TRIAGE}"', f'triage = "{TRIAGE}"\ntrusted_authserv_ids = ["{TRUSTED_MX}"]'
        )
        config.write_text(text, encoding="utf-8")
        serve = ServeProcess(["--config", str(config)], tmp_path, port)
        runtime = build_runtime(load_settings(config))
        try:
            yield Desk(serve, config, sink, runtime)
        finally:
            runtime.close()
            serve.stop()


def staff_mail(body: str, *, subject: str = "queue", to: str = SUPPORT) -> bytes:
    """A mail from Ana as our MX hands it on: DMARC passed for her domain."""
    mail = make_mail(subject, body, sender=f"Ana <{ANA}>", to=to)
    return f"Authentication-Results: {TRUSTED_MX}; dmarc=pass header.from=smilepass.example\n".encode() + mail


def receipts(desk: Desk, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 30
    while len(found := desk.sent_to(ANA)) < count:
        assert time.monotonic() < deadline, (
            f"{len(found)} mails to Ana, wanted {count}\n{desk.serve.output()}"
        )
        time.sleep(0.2)
    return [captured.message for captured in found]


def test_staff_get_the_open_queue_in_queue_order_by_mail(staff_desk: Desk) -> None:
    desk = staff_desk
    desk.send(make_mail("Dark mode", "Please.", sender=f"Maria Lopez <{MARIA}>"))
    desk.send(make_mail("[urgent] Charged twice", "Two charges.", sender=f"Maria Lopez <{MARIA}>"))
    desk.send(make_mail("Old question", "Hi.", sender=f"Bob <{BOB}>"), mail_from=BOB)
    desk.send(
        make_mail("Pro customer", "Hi.", sender="pro@customer.example"), mail_from="pro@customer.example"
    )
    desk.settled(4)
    for args in (("SP-1", "--assign", ANA), ("SP-3", "--status", "resolved")):
        done = ticketgate("tickets", "update", *args, "--as", ANA, config=desk.config)
        assert done.returncode == 0, done.stderr
    open_refs = [t["ref"] for t in desk.tickets() if t["status"] not in ("Resolved", "Closed")]
    assert open_refs == ["SP-2", "SP-4", "SP-1"]  # Urgent, then Pro before Free

    # To the plain address, #queue alone: the receipt lists the open queue; no ticket.
    desk.send(staff_mail("#queue\n"), mail_from=ANA)
    listed = desk.settled(5)
    assert (listed[-1]["outcome"], listed[-1]["ticket"]) == ("queue", None)
    (receipt,) = receipts(desk, 1)
    assert receipt["Subject"] == "The queue" and receipt["Auto-Submitted"] == "auto-replied"
    rows = html_rows(receipt)
    assert rows[0] == ["Ref", "Priority", "Title", "Assignee", "Status", "Waiting"]
    assert [row[0] for row in rows[1:]] == open_refs
    assert rows[1][:5] == ["SP-2", "Urgent", "Charged twice", "unassigned", "Open"]
    assert rows[3][:5] == ["SP-1", "Low", "Dark mode", ANA, "Open"]  # commands alone keep the status
    assert all(re.fullmatch(r"\d+m", row[5]) for row in rows[1:])
    assert re.findall(r"^(SP-\d+) ", text_of(receipt), flags=re.MULTILINE) == open_refs
    assert len(desk.tickets()) == 4

    # #queue mine: only hers.
    desk.send(staff_mail("#queue mine\n"), mail_from=ANA)
    mine = receipts(desk, 2)[1]
    assert mine["Subject"] == "Your queue"
    assert [row[0] for row in html_rows(mine)[1:]] == ["SP-1"]

    # On a ticket, through the staff reply address: the receipt of that ticket carries the queue.
    (notice,) = [c.message for c in desk.sent_to(TRIAGE) if "[SP-4]" in c.message["Subject"]]
    staff_address = parseaddr(notice["Reply-To"])[1]
    desk.send(make_mail("Re: [SP-4] Pro customer", "#queue\n", sender=f"Ana <{ANA}>", to=staff_address),
              to=staff_address, mail_from=ANA)  # fmt: skip
    on_ticket = receipts(desk, 3)[2]
    assert on_ticket["Subject"] == "[SP-4] Pro customer"
    assert [row[0] for row in html_rows(on_ticket)[1:]] == open_refs
    assert "Applied:\n  #queue" in text_of(on_ticket)

    # A customer's #queue: to the plain address it is a new ticket like any mail; on their own
    # ticket it is a refused command. Neither tells them anything of the queue.
    desk.send(make_mail("queue", "#queue\n", sender=f"Bob <{BOB}>"), mail_from=BOB)
    desk.send(make_mail("Re: [SP-3] Old question", "#queue\n", sender=f"Bob <{BOB}>"), mail_from=BOB)
    listed = desk.settled(9)
    assert [(row["outcome"], row["ticket"]) for row in listed[-2:]] == [("ticket", "SP-5"), ("reply", "SP-3")]
    shown = ticketgate("tickets", "show", "SP-3", "--json", config=desk.config).json()
    (refused,) = [e for e in shown["events"] if e["kind"] == "command_refused"]
    assert refused["new"].startswith("#queue")
    desk.quiet()
    for captured in desk.sent_to(BOB):
        assert "SP-2" not in captured.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert len(desk.sent_to(ANA)) == 3
