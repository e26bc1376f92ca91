"""`[[rules]]` end to end (SPEC §14): mail piped in with `ticketgate ingest`, what the rules made of
it read back with the real CLI (`tickets show`, `outbox list`, `inbox list|release`), on SQLite and
PostgreSQL; and `check-config` on bad and catch-all rules."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from tests.helpers import make_mail, relayed_mails, ticketgate, write_config

RULES = """
[[rules]]
name = "bigcorp"
from = "@bigcorp\\\\.example$"
priority = "High"
assign = "ana@smilepass.example"

[[rules]]
name = "invoices"
subject = "invoice"
category = "Billing & Payments"

[[rules]]
name = "vendor-news"
header = "List-Id: news\\\\.vendor\\\\.example"
drop = true

[[rules]]
name = "monitoring"
from = "^alerts@"
acknowledge = false
"""


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path, database_url, RULES)


def _plain_text(raw: bytes) -> str:
    """The text part of a notification, decoded, lines joined (templates wrap long lines)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(("plain",))
    return " ".join(str(part.get_content()).split()) if part is not None else ""


def ingest(config: Path, tmp_path: Path, *mails: bytes) -> None:
    files = []
    for index, raw in enumerate(mails):
        path = tmp_path / f"mail{index}.eml"
        path.write_bytes(raw)
        files.append(str(path))
    run = ticketgate("ingest", *files, "--recipient", "support@smilepass.example", config=config)
    assert run.returncode == 0, run.stderr


def test_rules_route_new_tickets_drop_list_mail_and_a_released_mail_gets_its_ticket(
    config: Path, tmp_path: Path
) -> None:
    ingest(
        config,
        tmp_path,
        # A subject tag says Low and Feature Requests; the rules say High and Billing: the rules win.
        make_mail("[low][idea] Invoice 42 is wrong", "Please fix it.", sender="Kim <kim@bigcorp.example>"),
        make_mail("Vendor weekly", "News.", sender="news@vendor.example",
                  headers={"List-Id": "Vendor News <news.vendor.example>"}),
        make_mail("Disk full on db-1", "Alert.", sender="alerts@customer.example", message_id="<d1@c>"),
    )  # fmt: skip
    # A reply never meets a rule, whatever it says: this one would be dropped and made Billing.
    reply = make_mail(
        "Re: [SP-2] Disk full on db-1 invoice", "Also the invoice.", sender="alerts@customer.example",
        headers={"In-Reply-To": "<d1@c>", "List-Id": "news.vendor.example"},
    )  # fmt: skip
    ingest(config, tmp_path, reply)

    listed = ticketgate("inbox", "list", "--json", config=config).json()
    assert [(row["outcome"], row["ticket"]) for row in listed] == [
        ("ticket", "SP-1"),
        ("dropped", None),
        ("ticket", "SP-2"),
        ("reply", "SP-2"),
    ]
    assert listed[1]["reason"] == "dropped by rule 'vendor-news'"
    only_dropped = ticketgate("inbox", "list", "--outcome", "dropped", config=config)
    assert only_dropped.returncode == 0 and "Vendor weekly" in only_dropped.stdout
    assert "Invoice" not in only_dropped.stdout

    routed = ticketgate("tickets", "show", "SP-1", "--json", config=config).json()
    assert (routed["priority"], routed["category"], routed["assignee"]) == (
        "High",
        "Billing & Payments",
        "ana@smilepass.example",
    )
    events = [(e["kind"], e["new"], e["actor"]) for e in routed["events"]]
    assert ("rule", "bigcorp", "ticketgate") in events
    assert ("rule", "invoices", "ticketgate") in events
    assert ("assigned", "ana@smilepass.example", "rule bigcorp") in events
    # (bigcorp.example is an Enterprise customer: its account manager hears of it too)
    assert {n["template"] for n in routed["notifications"]} == {
        "ticket_created",
        "staff_new_ticket",
        "escalation",
    }

    silenced = ticketgate("tickets", "show", "SP-2", "--json", config=config).json()
    # Staff only: no acknowledgement (the reply's notice to staff is the reply's).
    assert [n["template"] for n in silenced["notifications"]] == ["staff_new_ticket", "requester_reply"]
    assert [e["new"] for e in silenced["events"] if e["kind"] == "rule"] == ["monitoring"]
    assert silenced["category"] == "Technical Issues & Bugs"  # "invoices" did not fire on the reply
    # Staff are told why the sender was not answered.
    told = [_plain_text(p.read_bytes()) for p in relayed_mails(tmp_path / "outgoing")]
    assert any("Disk full" in text and "rule 'monitoring' says acknowledge = false" in text for text in told)

    # The dropped mail, released, opens its ticket (its own acknowledgement is still loop-protected:
    # it carries a List-Id).
    released = ticketgate("inbox", "release", str(listed[1]["id"]), config=config)
    assert released.returncode == 0, released.stderr
    assert "released from dropped: ticket SP-3" in released.stdout
    assert ticketgate("tickets", "show", "SP-3", "--json", config=config).json()["title"] == "Vendor weekly"


def test_check_config_names_the_rule_and_key_of_a_bad_pattern_and_warns_of_a_catch_all(
    tmp_path: Path,
) -> None:
    bad = write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        '[[rules]]\nname = "x"\nsubject = "(("\ndrop = true\n',
    )
    run = ticketgate("check-config", config=bad)
    assert run.returncode == 78
    assert run.stderr.startswith("ticketgate: config error: rules[0].subject: rule 'x': '((' is not a valid")

    (tmp_path / "other").mkdir()
    catch_all = write_config(
        tmp_path / "other",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        '[[rules]]\nname = "all"\nbody = ".*"\npriority = "High"\n',
    )
    run = ticketgate("check-config", config=catch_all)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("config OK")
    assert run.stderr == (
        "ticketgate: config warning: rules[0]: rule 'all' matches every mail that opens a ticket: "
        "each of its patterns (body ~ '.*') matches any text\n"
    )
