"""Web forms and staff forwards end to end (SPEC §13): mails built as Gmail, Outlook, Apple Mail,
Thunderbird and the SmilePass form mailer build them, sent over real SMTP to `ticketgate serve`
(whose [staff] trusts mx.smilepass.example's Authentication-Results, as a deployment behind its MX
does), on SQLite and PostgreSQL; what became of them read back with `ticketgate tickets list/show
--json`, as staff would. One serve per database for the whole module: each test writes as
customers of its own, so the tests do not see each other's tickets."""

from __future__ import annotations

import email
import email.policy
import io
import smtplib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.client_mails import (
    CLIENTS,
    Original,
    attached_forward,
    customer_mail,
    smilepass_form,
    staff_forward,
)
from tests.conftest import POSTGRES_ENV, missing_component
from tests.helpers import ServeProcess, free_port, make_mail, relayed_mails, ticketgate, write_config

SUPPORT = "support@smilepass.example"
LANGS = ("en", "de", "fr", "es")
TRIAGE = "triage@smilepass.example"
FORMS = """
[[forms]]
sender = "forms@smilepass.example"
other_fields = ["Upload Image"]

[[forms]]
sender = "contact@partner.example"
title_field = "Topic"
description_field = "Message"
require_authentication = false
"""


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), colour).save(out, "PNG")
    return out.getvalue()


class Desk:
    def __init__(self, root: Path, database_url: str, *, lmtp: bool = False) -> None:
        port = free_port()
        self.config = write_config(root, database_url, FORMS, listen=f"127.0.0.1:{port}")
        text_ = self.config.read_text(encoding="utf-8")
        anchor = 'triage = "triage@smilepass.example"'
        text_ = text_.replace(anchor, f'{anchor}\ntrusted_authserv_ids = ["mx.smilepass.example"]')
        if lmtp:  # as Postfix delivers to it
            text_ = text_.replace(f'listen = "127.0.0.1:{port}"', f'listen = "127.0.0.1:{port}"\nlmtp = true')
        self.config.write_text(text_, encoding="utf-8")
        self.lmtp = lmtp
        self.serve = ServeProcess(["--config", str(self.config)], root, port)
        self.port = port
        self.root = root

    def send(self, raw: bytes, *, mail_from: str = "ana@smilepass.example", to: str = SUPPORT) -> None:
        kind = smtplib.LMTP if self.lmtp else smtplib.SMTP
        with kind("127.0.0.1", self.port, timeout=10) as client:
            assert client.sendmail(mail_from, [to], raw) == {}

    def tickets_of(self, requester: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        """The tickets `requester` has (at least `count`), each shown whole."""
        deadline = time.monotonic() + timeout
        while True:
            listed = ticketgate("tickets", "list", "--requester", requester, "--json", config=self.config)
            assert listed.returncode == 0, listed.stderr
            if len(listed.json()) >= count:
                return [self.show(t["ref"]) for t in sorted(listed.json(), key=lambda t: t["id"])]
            assert time.monotonic() < deadline, f"no ticket for {requester}:\n{self.serve.output()[-3000:]}"
            time.sleep(0.2)

    def listed(
        self, requester: str, key: Callable[[dict[str, Any]], str], wanted: set[str]
    ) -> dict[str, Any]:
        """`requester`'s tickets by `key`, once every `wanted` key is there, each shown whole."""
        deadline = time.monotonic() + 30
        while True:
            listed = ticketgate(
                "tickets", "list", "--requester", requester, "--json", config=self.config
            ).json()
            found = {key(t): t for t in listed if key(t) in wanted}
            if found.keys() == wanted:
                return {k: self.show(t["ref"]) for k, t in found.items()}
            assert time.monotonic() < deadline, (
                f"{wanted - found.keys()} not found:\n{self.serve.output()[-3000:]}"
            )
            time.sleep(0.3)

    def delivered(self, ref: str, template: str, to: str) -> str:
        """The text of notification `template` to `to` on `ref`, once the sender delivered it."""
        deadline = time.monotonic() + 30
        while True:
            rows = [n for n in self.show(ref)["notifications"] if n["template"] == template and n["to"] == to]
            wanted = {f"<{n['message_id']}>" for n in rows if n["status"] == "sent"}
            for path in relayed_mails(self.root / "outgoing") if wanted else []:
                mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if mail["Message-ID"] in wanted:
                    body = mail.get_body(("plain",))
                    assert body is not None
                    return str(body.get_content())
            assert time.monotonic() < deadline, (
                f"{template} to {to} not delivered:\n{self.serve.output()[-3000:]}"
            )
            time.sleep(0.3)

    def show(self, ref: str) -> dict[str, Any]:
        done = ticketgate("tickets", "show", ref, "--json", config=self.config)
        assert done.returncode == 0, done.stderr
        return done.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def desk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    root = tmp_path_factory.mktemp(f"forms-{request.param}")
    admin = None
    name = ""
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'ticketgate.db'}"
    else:
        import os

        base = os.environ.get(POSTGRES_ENV)
        if not base:
            missing_component(f"PostgreSQL: set {POSTGRES_ENV} to run these")
        name = f"tg_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(str(base), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(str(base)).set(database=name).render_as_string(hide_password=False)
    running = Desk(root, url)
    try:
        yield running
    finally:
        running.serve.stop()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def unique(local: str) -> str:
    return f"{local}-{uuid.uuid4().hex[:8]}@customer.example"


def events(ticket: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in ticket["events"] if e["kind"] == kind]


def sent(ticket: dict[str, Any]) -> set[tuple[str, str]]:
    return {(n["template"], n["to"].lower()) for n in ticket["notifications"]}


# --- staff forwards ---------------------------------------------------------------------------------


def test_a_gmail_forward_opens_the_customers_ticket_with_the_note_and_its_commands(desk: Desk) -> None:
    customer = unique("maria")
    original = Original("Maria Lopez", customer, "Payment failed", "My card was declined twice.\nError 402.")
    note = "#assign me\n#urgent\nShe phoned about this one, please keep her posted."
    desk.send(staff_forward(original, "gmail", note=note, images=(("declined.png", png((200, 30, 30))),)))
    [ticket] = desk.tickets_of(customer)
    assert (ticket["requester"]["address"], ticket["requester"]["name"]) == (customer, "Maria Lopez")
    assert ticket["title"] == "Payment failed"
    assert ticket["description"] == "My card was declined twice.\nError 402."
    assert (ticket["priority"], ticket["assignee"], ticket["status"]) == (
        "Urgent",
        "ana@smilepass.example",
        "Open",
    )
    first, second = ticket["messages"]
    assert (first["author"], first["role"], first["visibility"]) == (customer, "requester", "public")
    assert first["text"] == "My card was declined twice.\nError 402."
    assert (second["author"], second["role"], second["visibility"]) == (
        "ana@smilepass.example",
        "staff",
        "internal",
    )
    assert second["text"] == "She phoned about this one, please keep her posted."
    assert [s["filename"] for s in ticket["screenshots"]] == ["declined.png"]
    [opened] = events(ticket, "forwarded")
    assert opened["actor"] == "ana@smilepass.example"
    assert f"forwarding a mail from {customer}" in opened["new"] and "Forwarded message" in opened["new"]
    assert {("priority_changed", "Urgent"), ("assigned", "ana@smilepass.example")} <= {
        (e["kind"], e["new"]) for e in ticket["events"]
    }
    # Planned in the transaction that opened the ticket: there as soon as the ticket is.
    assert {("staff_new_ticket", TRIAGE), ("command_result", "ana@smilepass.example")} <= sent(ticket)
    assert not [n for n in ticket["notifications"] if n["to"].lower() == customer]  # no #ack: not told
    # Triage read why, in the mail they got.
    notice = desk.delivered(ticket["ref"], "staff_new_ticket", TRIAGE)
    assert "the customer is acknowledged only when the staff text says #ack" in " ".join(notice.split())


def test_every_clients_inline_forward_in_each_language(desk: Desk) -> None:
    """Gmail, Outlook (plain text, desktop, web), Apple Mail and Thunderbird, in English, German,
    French and Spanish: 24 forwards, each the ticket of its own customer."""
    customers = {(client, lang): unique(f"{client}-{lang}") for client in sorted(CLIENTS) for lang in LANGS}
    for (client, lang), customer in customers.items():
        original = Original(
            "Jörg Müller", customer, f"Invoice {client} {lang} wrong", "The amount is 10 € too high."
        )
        desk.send(staff_forward(original, client, lang, note="Kunde wartet." if client == "gmail" else ""))
    deadline = time.monotonic() + 60
    while True:
        listed = ticketgate("tickets", "list", "--json", config=desk.config).json()
        by_requester = {t["requester"]["address"]: t for t in listed}
        if set(customers.values()) <= by_requester.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for (client, lang), customer in customers.items():
        ticket = by_requester[customer]
        assert ticket["requester"] == {"address": customer, "name": "Jörg Müller"}, (client, lang)
        assert ticket["title"] == f"Invoice {client} {lang} wrong", (client, lang)
        assert ticket["description"] == "The amount is 10 € too high.", (client, lang)
    # Two of them whole: the note, when there is one, and the event.
    ticket = desk.show(by_requester[customers[("gmail", "de")]]["ref"])
    assert [(m["role"], m["text"]) for m in ticket["messages"]][1:] == [("staff", "Kunde wartet.")]
    assert len(events(ticket, "forwarded")) == 1
    # With no text of their own the forward is the ticket alone (SPEC §13): no note.
    ticket = desk.show(by_requester[customers[("thunderbird", "fr")]]["ref"])
    assert [m["role"] for m in ticket["messages"]] == ["requester"]


def test_an_attached_original_with_ack_is_acknowledged_and_its_thread_continues(desk: Desk) -> None:
    customer = unique("lee")
    original = Original("Lee Chan", customer, "Re: [billing] Refund?", "Where is my refund?")
    message_id = f"<{uuid.uuid4().hex}@customer.example>"
    desk.send(
        attached_forward(original, note="#ack\n#assign me", images=(("refund.png", png((0, 90, 200))),),
                         message_id=message_id)
    )  # fmt: skip
    [ticket] = desk.tickets_of(customer)
    assert (ticket["title"], ticket["category"], ticket["assignee"]) == (
        "Refund?", "Billing & Payments", "ana@smilepass.example",
    )  # fmt: skip
    assert ticket["messages"][0]["message_id"] == message_id.strip("<>")
    assert [s["filename"] for s in ticket["screenshots"]] == ["refund.png"]
    assert "attached whole" in events(ticket, "forwarded")[0]["new"]
    assert ("ticket_created", customer) in sent(ticket)
    # The customer writes again on their own thread: it joins the ticket staff opened for them.
    follow = customer_mail(Original("Lee Chan", customer, "Re: Refund?", "Any news?"))
    follow["In-Reply-To"] = message_id
    desk.send(follow.as_bytes(), mail_from=customer)
    deadline = time.monotonic() + 20
    while len(ticket["messages"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        ticket = desk.show(ticket["ref"])
    # The forward's own commands are an (empty) internal entry, as any staff mail of commands alone.
    assert [(m["role"], m["text"]) for m in ticket["messages"]] == [
        ("requester", "Where is my refund?"), ("staff", ""), ("requester", "Any news?"),
    ]  # fmt: skip
    assert ticket["messages"][2]["threaded_by"] == "references"


def test_forwards_that_are_not_read_as_such(desk: Desk) -> None:
    # A customer forwarding a friend's mail: an ordinary mail from the customer.
    friend, forwarder = unique("friend"), unique("fwd")
    desk.send(
        staff_forward(Original("Friend", friend, "Look", "Bug here"), "gmail", staff=f"Kim <{forwarder}>"),
        mail_from=forwarder,
    )
    [ticket] = desk.tickets_of(forwarder)
    assert (
        ticket["title"] == "Look"
        and not events(ticket, "forwarded")
        and not events(ticket, "forward_not_read")
    )
    # Staff's address without authentication: an ordinary mail from it, and the event says why.
    hidden = unique("hidden")
    desk.send(
        staff_forward(Original("Hidden", hidden, "Unauthenticated fwd", "x"), "apple", note="#urgent",
                      authenticated=False)
    )  # fmt: skip
    # A forward whose sender cannot be read: the staff member's own ticket, saying why.
    nameless = staff_forward(
        Original("Nobody Known", "x@customer.example", "Nameless fwd", "y"), "outlook-web"
    )
    desk.send(nameless.replace(b"From: Nobody Known <x@customer.example>", b"From: Nobody Known"))
    mine = desk.listed("ana@smilepass.example", lambda t: t["title"], {"Unauthenticated fwd", "Nameless fwd"})
    unauthenticated, unreadable = mine["Unauthenticated fwd"], mine["Nameless fwd"]
    [why] = events(unauthenticated, "forward_not_read")
    assert "read as an ordinary mail" in why["new"] and "not authenticated" in why["new"]
    assert unauthenticated["priority"] == "Low"
    [why] = events(unreadable, "forward_not_read")
    assert "cannot be read" in why["new"] and "Nobody Known" in why["new"]
    assert ticketgate("tickets", "list", "--requester", hidden, "--json", config=desk.config).json() == []


# --- web forms ---------------------------------------------------------------------------------------


def test_the_smilepass_form_opens_the_visitors_ticket_and_acknowledges_the_visitor(desk: Desk) -> None:
    visitor = unique("visitor")
    desk.send(
        smilepass_form(
            title="Cannot add a payment plan",
            description="I click ADD and nothing happens.\nError: plan_limit",
            priority="High",
            category="Payment Plans",
            visitor=f"Visi Tor <{visitor}>",
            image=("add-button.png", png((20, 160, 60))),
        ),
        mail_from="forms@smilepass.example",
    )
    [ticket] = desk.tickets_of(visitor)
    assert ticket["requester"] == {"address": visitor, "name": "Visi Tor"}
    assert (ticket["title"], ticket["priority"], ticket["category"]) == (
        "Cannot add a payment plan", "High", "Payment Plans",
    )  # fmt: skip
    assert ticket["description"] == "I click ADD and nothing happens.\nError: plan_limit"
    assert [s["filename"] for s in ticket["screenshots"]] == ["add-button.png"]
    assert "requester from Reply-To" in events(ticket, "form_read")[0]["new"]
    assert ("ticket_created", visitor) in sent(ticket)
    assert not [n for n in ticket["notifications"] if n["to"].lower() == "forms@smilepass.example"]


def test_an_unknown_form_value_keeps_the_default_and_says_so(desk: Desk) -> None:
    visitor = unique("vague")
    desk.send(
        smilepass_form(
            title="Hmm", description="d", priority="Whenever", category="Billing", visitor=visitor
        ),
        mail_from="forms@smilepass.example",
    )
    [ticket] = desk.tickets_of(visitor)
    assert (ticket["priority"], ticket["category"]) == ("Low", "Billing & Payments")
    [unknown] = events(ticket, "form_value_unknown")
    assert (unknown["field"], unknown["new"]) == (
        "priority", "Priority: 'Whenever' is no priority nor a tag word of the vocabulary; kept Low",
    )  # fmt: skip


def test_an_unauthenticated_form_sender_is_not_read_and_never_answered(desk: Desk) -> None:
    visitor = unique("forged")
    title = f"Forged form {uuid.uuid4().hex[:6]}"
    desk.send(
        smilepass_form(title=title, description="d", priority="Urgent", category="Security",
                       visitor=visitor, authenticated=False),
        mail_from="forms@smilepass.example",
    )  # fmt: skip
    by_title = desk.listed(
        "forms@smilepass.example", lambda t: t["description"].split("\n")[0], {f"Title: {title}"}
    )
    mine = [by_title[f"Title: {title}"]]
    [ticket] = mine
    assert ticket["requester"]["address"] == "forms@smilepass.example" and ticket["priority"] == "Low"
    [why] = events(ticket, "form_not_read")
    assert "not read as the form of forms@smilepass.example" in why["new"]
    assert "no Authentication-Results from a trusted server" in why["new"]
    assert {n["to"].lower() for n in ticket["notifications"]} == {TRIAGE}  # planned with the ticket
    listed = ticketgate("tickets", "list", "--requester", visitor, "--json", config=desk.config)
    assert listed.json() == []


def test_a_form_that_does_not_require_authentication_is_read_without_it(desk: Desk) -> None:
    visitor = unique("partner")
    body = (
        f"Name: Pat Partner\nEmail: {visitor}\nTopic: API key rotation\nMessage: How do I rotate keys?\nBye"
    )
    desk.send(
        make_mail("Contact form", body, sender="contact@partner.example"), mail_from="contact@partner.example"
    )
    [ticket] = desk.tickets_of(visitor)
    assert ticket["requester"] == {"address": visitor, "name": "Pat Partner"}
    assert (ticket["title"], ticket["description"]) == ("API key rotation", "How do I rotate keys?\nBye")


def test_over_lmtp_as_an_mta_delivers_them(tmp_path: Path) -> None:
    """The same reading behind Postfix: `smtp.lmtp = true`, a form mail and an attached forward."""
    desk = Desk(tmp_path, f"sqlite:///{tmp_path / 'ticketgate.db'}", lmtp=True)
    try:
        visitor, customer = unique("lmtp-visitor"), unique("lmtp-customer")
        desk.send(
            smilepass_form(title="Over LMTP", description="d", priority="Medium", category="Account & Access",
                           visitor=visitor),
            mail_from="forms@smilepass.example",
        )  # fmt: skip
        desk.send(attached_forward(Original("", customer, "Fwd over LMTP", "Hello"), note="#ack"))
        [form_ticket] = desk.tickets_of(visitor)
        assert (form_ticket["title"], form_ticket["priority"], form_ticket["category"]) == (
            "Over LMTP", "Medium", "Account & Access",
        )  # fmt: skip
        [forwarded] = desk.tickets_of(customer)
        assert forwarded["title"] == "Fwd over LMTP" and ("ticket_created", customer) in sent(forwarded)
    finally:
        desk.serve.stop()
