"""Templates: every event has a text and an HTML part, HTML is autoescaped, undefined is an error,
a deployment's folder overrides any template, and `ticket_created` asks only for what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.mail.quotes import REPLY_MARKER
from gateway.notify.hints import DEVICE, HAPPENED, SCREENSHOT, TRYING, what_helps
from gateway.notify.render import Renderer, RenderError

BASE: dict[str, Any] = {
    "marker": REPLY_MARKER,
    "desk": "SmilePass Support",
    "ref": "SP-42",
    "title": "Card <b>declined</b> & refund",
    "status": "Open",
    "priority": "High",
    "category": "Billing & Payments",
    "tier": "Pro",
    "requester_name": "Maria <Lopez>",
    "requester_address": "maria@customer.example",
}
EXTRA: dict[str, dict[str, Any]] = {
    "ticket_created": {"helps": [TRYING], "device": None, "has_screenshot": False},
    "staff_new_ticket": {
        "tags": ["billing"],
        "text": "<script>x</script>",
        "acknowledged": True,
        "ack_note": "",
    },
    "staff_reply": {"text": "Fixed <now>.", "author_name": "Ana", "new_status": None},
    "requester_reply": {
        "text": "Still broken",
        "author_name": "Maria",
        "author_address": "maria@customer.example",
    },
    "status_changed": {"old": "In Progress", "new": "Resolved"},
    "command_result": {
        "applied": ["#priority high"],
        "refused": [{"line": "#frobnicate", "reason": "unknown"}],
    },
    "escalation": {"reason": "Security category", "text": "A hole"},
    "my_tickets": {
        "tickets": [
            {
                "ref": "SP-42",
                "priority": "High",
                "date": "2024-03-04",
                "title": "Card <b>declined</b> & refund",
                "category": "Billing & Payments",
                "status": "Open",
                "open": True,
            },
        ],
        "open_count": 1,
        "total": 1,
    },
}


@pytest.mark.parametrize("template", sorted(EXTRA))
def test_every_event_renders_both_parts_with_the_reply_marker_on_top(template: str) -> None:
    rendered = Renderer().render(template, {**BASE, **EXTRA[template]})
    assert rendered.text.lstrip().startswith(REPLY_MARKER)
    assert REPLY_MARKER in rendered.html
    assert "<html>" in rendered.html
    # Autoescaped in HTML, left as written in the plain text.
    assert "<b>declined</b>" not in rendered.html and "&lt;b&gt;declined&lt;/b&gt;" in rendered.html
    assert "<script>" not in rendered.html


def test_plain_text_is_not_escaped() -> None:
    rendered = Renderer().render("ticket_created", {**BASE, **EXTRA["ticket_created"]})
    # Read as a person reads it: the plain text wraps at 72 columns, so a title may span lines.
    assert "Card <b>declined</b> & refund" in " ".join(rendered.text.split())
    assert "&amp;" not in rendered.text


@pytest.mark.parametrize("template", sorted(EXTRA))
def test_a_missing_variable_is_an_error_not_a_blank(template: str) -> None:
    context = {**BASE, **EXTRA[template]}
    needed = "requester_address" if template == "my_tickets" else "title"  # my_tickets is about no ticket
    del context[needed]
    with pytest.raises(RenderError, match=needed):
        Renderer().render(template, context)


def test_a_deployment_folder_overrides_one_template_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "ticket_created.txt.j2").write_text("{{ marker }}\nOur own words for {{ ref }}.\n")
    renderer = Renderer(tmp_path)
    rendered = renderer.render("ticket_created", {**BASE, **EXTRA["ticket_created"]})
    assert rendered.text == f"{REPLY_MARKER}\nOur own words for SP-42.\n"
    assert "thanks for writing to us" in rendered.html  # the built-in HTML part
    assert "Still broken" in renderer.render("requester_reply", {**BASE, **EXTRA["requester_reply"]}).text


def test_an_override_with_an_undefined_variable_or_bad_syntax_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ticket_created.txt.j2").write_text("Hello {{ customer_nickname }}\n")
    (tmp_path / "staff_reply.txt.j2").write_text("{% if %}\n")
    renderer = Renderer(tmp_path)
    with pytest.raises(RenderError, match="customer_nickname"):
        renderer.render("ticket_created", {**BASE, **EXTRA["ticket_created"]})
    with pytest.raises(RenderError, match="staff_reply"):
        renderer.render("staff_reply", {**BASE, **EXTRA["staff_reply"]})
    with pytest.raises(RenderError, match="no_such_template"):
        renderer.render("no_such_template", BASE)


def test_ticket_created_asks_for_everything_a_bare_mail_lacks() -> None:
    hints = what_helps("Hi, see subject.", has_screenshot=False)
    assert hints.helps == (TRYING, HAPPENED, DEVICE, SCREENSHOT)
    text = (
        Renderer()
        .render(
            "ticket_created", {**BASE, "helps": list(hints.helps), "device": None, "has_screenshot": False}
        )
        .text
    )
    flowing = " ".join(text.split())  # a long item wraps onto a second, indented line
    for item in (TRYING, HAPPENED, DEVICE, SCREENSHOT):
        assert item in flowing
    assert "Thank you for the screenshot" not in text


def test_ticket_created_says_when_a_screenshot_is_attached_and_a_browser_or_device_is_named() -> None:
    hints = what_helps(
        "I was trying to pay my invoice in Chrome on my Windows laptop and it shows an error.",
        has_screenshot=True,
    )
    assert hints.helps == ()
    assert hints.device == "Chrome, Windows"
    context = {**BASE, "helps": [], "device": hints.device, "has_screenshot": True}
    text = Renderer().render("ticket_created", context).text
    assert "Thank you for the screenshot" in text
    assert "You told us you are using Chrome, Windows" in text
    assert "would help us answer sooner" not in text


def test_a_device_named_but_no_screenshot_asks_only_for_the_screenshot() -> None:
    hints = what_helps("When I tap Pay on my iPhone nothing happens.", has_screenshot=False)
    assert hints.helps == (SCREENSHOT,)
    assert hints.device == "iPhone"


def test_my_tickets_plain_text_keeps_to_72_columns_and_says_what_it_left_out() -> None:
    long_title = "Payment plan ADD button does nothing " * 5 + "Supercalifragilisticexpialidocious" * 2
    rows = [
        {"ref": f"SP-{n}", "priority": "Medium", "date": "2024-03-04", "title": long_title,
         "category": "Technical Issues & Bugs", "status": "Waiting on user", "open": True}
        for n in (12345, 7)
    ]  # fmt: skip
    context = {**BASE, "tickets": rows, "open_count": 2, "total": 60}
    text = Renderer().render("my_tickets", context).text
    assert max(len(line) for line in text.splitlines()) <= 72
    assert "(2 open of 60)" in text and "and 58 more, not shown here" in text
    # The whole title is there, wrapped under its column (a word longer than the column is broken).
    row = text.split("SP-7 ", 1)[1].split("Technical Issues & Bugs", 1)[0]
    assert "".join(row.split()).startswith("Medium2024-03-04" + "".join(long_title.split()))
    assert all(line.startswith(" " * 30) for line in row.splitlines()[1:])
    empty = Renderer().render("my_tickets", {**context, "tickets": [], "open_count": 0, "total": 0})
    assert "you have no tickets with us under this address (maria@customer.example)" in empty.text
    assert "<table" not in empty.html


def test_a_screenshot_whose_bytes_are_gone_is_listed_as_unavailable_not_shown() -> None:
    files = {
        "screenshots": [{"number": 1, "name": "basket <empty>.png", "unavailable": True}],
        "attachments": [],
        "attach_limit": "10.0 MB",
    }
    rendered = Renderer().render("staff_new_ticket", {**BASE, **EXTRA["staff_new_ticket"], **files})
    assert "1. basket <empty>.png: unavailable (missing from the blob store)" in rendered.text
    assert "basket &lt;empty&gt;.png · <strong>unavailable</strong>" in rendered.html
    assert "cid:" not in rendered.html
