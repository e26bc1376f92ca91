"""The CLI for staff (SPEC §12), run as the real `ticketgate` command on SQLite and PostgreSQL: mail in
with `ticketgate ingest`, tickets read back with `tickets show --json` / `tickets list`, notifications
read from the dir relay's folder as the recipient gets them."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_mail, ticketgate, write_config

ANA = "ana@smilepass.example"
MARIA = "maria@customer.example"
TRIAGE = "triage@smilepass.example"
# What `ingest` prints for a mail that opened a ticket: `-: inbox 7: ticket SP-3 (new ticket 3)`.
NEW_TICKET = re.compile(r"^-: inbox \d+: ticket (SP-\d+) \(new ticket \d+\)$", re.MULTILINE)


class Desk:
    """A ticketgate configured in `tmp_path`; no daemon: the CLI sends what it queues at once."""

    def __init__(self, tmp_path: Path, database_url: str, extra: str = "") -> None:
        self.tmp_path = tmp_path
        self.config = write_config(tmp_path, database_url, extra)
        self.outgoing = tmp_path / "outgoing"

    def ingest(self, raw: bytes, *, recipient: str = "support@smilepass.example") -> str:
        done = ticketgate("ingest", "--recipient", recipient, config=self.config, stdin=raw)
        assert done.returncode == 0, done.stderr
        return done.stderr

    def open(self, subject: str, body: str = "It does not work.\n", sender: str = MARIA) -> str:
        """Mail that opens a ticket; its reference as `ingest` reports it (one command, not three:
        the lists the tests then read show whether the ticket is really there)."""
        said = self.ingest(make_mail(subject, body, sender=sender))
        (ref,) = NEW_TICKET.findall(said)
        return str(ref)

    def run(self, *args: str) -> Any:
        return ticketgate(*args, config=self.config)

    def update(self, ref: str, *args: str, as_staff: str = ANA) -> Any:
        return self.run("tickets", "update", ref, *args, "--as", as_staff)

    def show(self, ref: str) -> dict[str, Any]:
        done = self.run("tickets", "show", ref, "--json")
        assert done.returncode == 0, done.stderr
        return done.json()  # type: ignore[no-any-return]

    def list(self, *args: str) -> list[dict[str, Any]]:
        done = self.run("tickets", "list", "--json", *args)
        assert done.returncode == 0, done.stderr
        return done.json()  # type: ignore[no-any-return]

    def refs(self, *args: str) -> list[str]:
        return [t["ref"] for t in self.list(*args)]

    def mails(self, ref: str, template: str, to: str) -> list[EmailMessage]:
        """Every `template` mail to `to` about `ref`, as written by the relay, in order."""
        wanted = [
            f"<{n['message_id']}>"
            for n in self.show(ref)["notifications"]
            if n["template"] == template and n["to"].lower() == to.lower()
        ]
        found: dict[str, EmailMessage] = {}
        for path in sorted(self.outgoing.glob("*.eml")) if self.outgoing.exists() else []:
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(mail, EmailMessage)
            found[str(mail["Message-ID"])] = mail
        return [found[mid] for mid in wanted if mid in found]


def body_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def changes(ticket: dict[str, Any]) -> list[tuple[str, str | None, str | None, str | None, str]]:
    return [(e["kind"], e["field"], e["old"], e["new"], e["actor"]) for e in ticket["events"]]


@pytest.fixture
def desk(tmp_path: Path, database_url: str) -> Desk:
    return Desk(tmp_path, database_url)


# --- tickets update ----------------------------------------------------------------------------


def test_update_changes_fields_with_events_by_the_staff_member(desk: Desk) -> None:
    ref = desk.open("Payment plan ADD button does nothing")
    done = desk.update(ref, "--status", "in-progress", "--priority", "urgent", "--assign", "me")
    assert done.returncode == 0, done.stderr
    assert "status: Open -> In Progress" in done.stdout

    ticket = desk.show(ref)
    assert (ticket["status"], ticket["priority"], ticket["assignee"]) == ("In Progress", "Urgent", ANA)
    assert changes(ticket)[1:] == [
        ("status_changed", "status", "Open", "In Progress", ANA),
        ("priority_changed", "priority", "Low", "Urgent", ANA),
        ("assigned", "assignee", None, ANA, ANA),
    ]
    # Commands only: an internal entry, and nothing new for the requester (only the acknowledgement).
    assert ticket["messages"][-1]["role"] == "staff"
    assert ticket["messages"][-1]["visibility"] == "internal"
    assert ticket["messages"][-1]["threaded_by"] == "cli"
    assert [n["template"] for n in ticket["notifications"] if n["to"] == MARIA] == ["ticket_created"]


def test_reply_file_is_a_public_reply_the_requester_gets_as_staff_reply(desk: Desk) -> None:
    ref = desk.open("Refund not received")
    reply = desk.tmp_path / "reply.txt"
    # A line that looks like a command inside the reply is text: only options are commands.
    reply.write_text("Hello Maria,\n\nthe refund left today.\n#close\n", encoding="utf-8")
    done = desk.update(ref, "--reply-file", str(reply), "--status", "resolved")
    assert done.returncode == 0, done.stderr

    ticket = desk.show(ref)
    assert ticket["status"] == "Resolved"
    last = ticket["messages"][-1]
    assert (last["author"], last["role"], last["visibility"]) == (ANA, "staff", "public")
    assert "#close" in last["text"]
    # The reply and the status change reach the requester as one mail, as with a staff mail.
    (mail,) = desk.mails(ref, "staff_reply", MARIA)
    assert email.utils.parseaddr(str(mail["To"]))[1] == MARIA
    assert f"[{ref}]" in str(mail["Subject"])
    assert "the refund left today." in body_text(mail)
    assert desk.mails(ref, "status_changed", MARIA) == []


def test_note_is_internal_and_moves_an_open_ticket_to_in_progress(desk: Desk) -> None:
    ref = desk.open("Login loop on Safari")
    done = desk.update(ref, "--note", "Reproduced on Safari 17; looks like the cookie flag.")
    assert done.returncode == 0, done.stderr
    ticket = desk.show(ref)
    assert ticket["status"] == "In Progress"  # staff's first action on an Open ticket (SPEC §5)
    assert ticket["messages"][-1]["visibility"] == "internal"
    assert ticket["messages"][-1]["text"] == "Reproduced on Safari 17; looks like the cookie flag."
    assert desk.mails(ref, "staff_reply", MARIA) == []


def test_invalid_transition_is_refused_with_its_reason_and_nothing_changes(desk: Desk) -> None:
    ref = desk.open("Old question")
    assert desk.update(ref, "--status", "closed").returncode == 0
    before = desk.show(ref)
    done = desk.update(ref, "--status", "open", "--priority", "high", "--note", "trying")
    assert done.returncode == 65
    assert "Closed is final" in done.stderr and "nothing changed" in done.stderr
    after = desk.show(ref)
    assert (after["status"], after["priority"]) == ("Closed", "Low")
    assert after["events"] == before["events"] and after["messages"] == before["messages"]


def test_unknown_values_and_non_staff_are_refused(desk: Desk) -> None:
    ref = desk.open("Export is slow")
    before = desk.show(ref)
    bad_priority = desk.update(ref, "--priority", "whenever")
    assert bad_priority.returncode == 65 and "unknown priority" in bad_priority.stderr
    not_staff = desk.update(ref, "--assign", "bob@elsewhere.example")
    assert not_staff.returncode == 65 and "not a staff address" in not_staff.stderr
    customer = desk.update(ref, "--status", "resolved", as_staff=MARIA)
    assert customer.returncode == 65 and "not a configured staff address" in customer.stderr
    nothing = desk.update(ref)
    assert nothing.returncode == 64
    assert desk.update("SP-999", "--note", "x").returncode == 1
    assert desk.show(ref)["events"] == before["events"]


def test_update_by_cli_and_the_same_commands_by_mail_do_the_same(desk: Desk) -> None:
    """One code path: the same commands by staff mail and by `tickets update` leave the same fields,
    events (but their time) and notifications."""
    by_mail = desk.open("Invoice shows the wrong VAT", sender="Maria <maria@customer.example>")
    by_cli = desk.open("Invoice shows the wrong VAT", sender="Maria <maria@customer.example>")
    (staff_mail,) = desk.mails(by_mail, "staff_new_ticket", TRIAGE)
    staff_reply_to = email.utils.parseaddr(str(staff_mail["Reply-To"]))[1]
    # The CLI writes its options as command lines in this order: status, priority, category, assign.
    body = "#status waiting\n#priority high\n#category billing\n#assign me\n\nWhich invoice number is it?\n"
    # A bare From: the CLI knows the staff address only, not the name a mail client adds.
    reply = make_mail(f"Re: [{by_mail}] Invoice", body, sender=ANA, to=staff_reply_to)
    desk.ingest(reply, recipient=staff_reply_to)

    text = desk.tmp_path / "question.txt"
    text.write_text("Which invoice number is it?\n", encoding="utf-8")
    done = desk.update(
        by_cli, "--priority", "high", "--category", "billing", "--assign", "me", "--status", "waiting",
        "--reply-file", str(text),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    mail_ticket, cli_ticket = desk.show(by_mail), desk.show(by_cli)
    for field in ("status", "priority", "category", "assignee"):
        assert mail_ticket[field] == cli_ticket[field], field
    assert (cli_ticket["status"], cli_ticket["category"]) == ("Waiting on user", "Billing & Payments")
    assert changes(mail_ticket) == changes(cli_ticket)
    for key in ("role", "visibility", "text", "author"):
        assert mail_ticket["messages"][-1][key] == cli_ticket["messages"][-1][key], key
    to_requester = [(n["template"], n["to"]) for n in mail_ticket["notifications"] if n["to"] == MARIA]
    assert to_requester == [(n["template"], n["to"]) for n in cli_ticket["notifications"] if n["to"] == MARIA]
    assert ("staff_reply", MARIA) in to_requester
    # The mail got its receipt by mail; the CLI printed it instead.
    assert [n["template"] for n in mail_ticket["notifications"] if n["to"] == ANA] == ["command_result"]
    assert [n["template"] for n in cli_ticket["notifications"] if n["to"] == ANA] == []
    (cli_reply,) = desk.mails(by_cli, "staff_reply", MARIA)
    (mail_reply,) = desk.mails(by_mail, "staff_reply", MARIA)

    # The same but for the ref and the time of the message each quotes (SPEC §13: written apart).
    def same(body: str, ref: str) -> str:
        return re.sub(r"On \d{4}-\d\d-\d\d \d\d:\d\d UTC", "On DATE", body.replace(ref, "REF"))

    assert same(body_text(cli_reply), by_cli) == same(body_text(mail_reply), by_mail)
    assert "> It does not work." in body_text(cli_reply)


# --- tickets list --------------------------------------------------------------------------------


def test_list_filters_combine_and_keep_queue_order(desk: Desk) -> None:
    free = desk.open("[urgent] [billing] Charged twice")
    enterprise = desk.open("[urgent] Dashboard down", sender="Bo <bo@bigcorp.example>")
    pro = desk.open("[high] Exports fail", body="The CSV export times out.\n", sender="pro@customer.example")
    low = desk.open("Dark mode please", sender="Lee <lee@other.example>")
    assert desk.update(pro, "--assign", ANA).returncode == 0
    assert desk.update(free, "--status", "waiting").returncode == 0

    assert desk.refs() == [enterprise, free, pro, low]  # Urgent (Enterprise first), High, Low
    assert desk.refs("--priority", "urgent") == [enterprise, free]
    assert desk.refs("--priority", "Urgent", "--priority", "high") == [enterprise, free, pro]
    assert desk.refs("--tier", "enterprise") == [enterprise]
    assert desk.refs("--tier", "pro", "--tier", "free") == [free, pro, low]
    assert desk.refs("--category", "billing") == [free]
    assert desk.refs("--category", "Billing & Payments", "--priority", "high") == []
    assert desk.refs("--assignee", ANA.upper()) == [pro]
    assert desk.refs("--assignee", "none") == [enterprise, free, low]
    assert desk.refs("--requester", "LEE@other.example") == [low]
    assert desk.refs("--status", "waiting") == [free]
    assert desk.refs("--status", "open", "--priority", "urgent") == [enterprise]
    assert desk.refs("--search", "csv EXPORT") == [pro]  # in a message
    assert desk.refs("--search", "dark mode") == [low]  # in the title
    assert desk.refs("--search", "100%") == []  # LIKE wildcards are text
    assert desk.refs("--since", "2000-01-01") == [enterprise, free, pro, low]
    assert desk.refs("--since", "2999-01-01T00:00:00+00:00") == []
    assert desk.refs("--since", "1h") == [enterprise, free, pro, low]

    table = desk.run("tickets", "list", "--tier", "pro")
    assert table.returncode == 0, table.stderr
    header, _, row = table.stdout.splitlines()[:3]
    assert header.split()[-4:] == ["Tier", "Assignee", "Reply", "due"]
    assert row.split()[-4:-2] == ["Pro", ANA]  # then the due date and time

    for bad in (["--tier", "gold"], ["--status", "finished"], ["--since", "last week"]):
        done = desk.run("tickets", "list", *bad)
        assert done.returncode == 64 and bad[1] in done.stderr, done.stderr


# --- undeliverable -------------------------------------------------------------------------------


def dsn_returning(mail: EmailMessage, failed: str) -> bytes:
    """A real RFC 3464 report for a mail we sent, as the recipient's MTA writes it (5.1.1: no such user)."""
    returned = "".join(f"{name}: {value}\r\n" for name, value in mail.items() if name.lower() != "received")
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        "To: support@smilepass.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
        "Message-ID: <dsn.staffcli@mx.customer.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{failed}>: Recipient address rejected\r\n"
        f"\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}\r\n--B--\r\n"
    ).encode()


def test_undeliverable_list_and_clear(desk: Desk) -> None:
    assert desk.run("undeliverable", "list").stdout.strip() == "(no address is marked undeliverable)"
    ref = desk.open("Where is my invoice?")
    (ack,) = desk.mails(ref, "ticket_created", MARIA)
    desk.ingest(dsn_returning(ack, MARIA))

    listed = desk.run("undeliverable", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = listed.json()
    assert row["address"] == MARIA and "5.1.1" in row["reason"] and row["since"].endswith("Z")
    assert MARIA in desk.run("undeliverable", "list").stdout

    # While marked, a staff reply reaches nobody, and the ticket says why.
    reply = desk.tmp_path / "reply.txt"
    reply.write_text("It is attached to your account page.\n", encoding="utf-8")
    assert desk.update(ref, "--reply-file", str(reply)).returncode == 0
    assert desk.mails(ref, "staff_reply", MARIA) == []
    skipped = [e["new"] for e in desk.show(ref)["events"] if e["kind"] == "notification_skipped"]
    assert any(s.startswith("staff_reply:") and "undeliverable" in s for s in skipped), skipped

    cleared = desk.run("undeliverable", "clear", "Maria@Customer.example")
    assert cleared.returncode == 0, cleared.stderr
    assert desk.run("undeliverable", "list", "--json").json() == []
    again = desk.run("undeliverable", "clear", MARIA)
    assert again.returncode == 1 and "not marked undeliverable" in again.stderr

    assert desk.update(ref, "--reply-file", str(reply)).returncode == 0
    assert len(desk.mails(ref, "staff_reply", MARIA)) == 1


# --- response targets ----------------------------------------------------------------------------


def test_first_response_due_follows_priority_and_tier(tmp_path: Path, database_url: str) -> None:
    desk = Desk(tmp_path, database_url, extra="\n[response_targets]\nurgent = 30\nlow = 600\n")
    enterprise = desk.open("[urgent] Dashboard down", sender="Bo <bo@bigcorp.example>")
    free = desk.open("Dark mode please")

    def due_minutes(ticket: dict[str, Any]) -> float:
        opened = datetime.fromisoformat(ticket["created_at"].replace("Z", "+00:00"))
        due = datetime.fromisoformat(ticket["first_response_due"].replace("Z", "+00:00"))
        return (due - opened).total_seconds() / 60

    listed = {t["ref"]: t for t in desk.list()}
    assert due_minutes(listed[enterprise]) == 15  # Urgent 30, halved for Enterprise
    assert due_minutes(listed[free]) == 600
    assert due_minutes(desk.show(free)) == 600
    assert desk.update(free, "--priority", "high").returncode == 0
    assert due_minutes(desk.show(free)) == 240  # the default for High, from when it was opened

    table = desk.run("tickets", "list", "--tier", "enterprise").stdout.splitlines()
    assert table[0].rstrip().endswith("Reply due")
    due = datetime.fromisoformat(listed[enterprise]["first_response_due"].replace("Z", "+00:00"))
    assert table[2].rstrip().endswith(due.strftime("%Y-%m-%d %H:%M"))

    (tmp_path / "bad").mkdir()
    bad = write_config(tmp_path / "bad", "sqlite:///x.db", "\n[response_targets]\nurgent = 0\nsoon = 5\n")
    check = ticketgate("check-config", config=bad)
    assert check.returncode == 78
    assert "response_targets.urgent" in check.stderr and "response_targets.soon" in check.stderr
