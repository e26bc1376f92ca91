"""HTML from customers is inert in what ticketgate sends (SPEC §11): `ticketgate serve` takes hostile mail
over SMTP and sends its notifications through a real SMTP sink; each sent mail's text/html part is parsed
with lxml and must hold no script or style element, no on* attribute and no javascript: link — while the
customer's text is still there, shown as text."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import lxml.html
import pytest

from tests.helpers import ServeProcess, free_port, write_config
from tests.integration.smtp_sink import Captured, SmtpSink

SUPPORT = "support@smilepass.example"
MARIA = "maria@customer.example"
TRIAGE = "triage@smilepass.example"

SCRIPT = "<script>alert('title')</script>"
TITLE = f"{SCRIPT} <img src=x onerror=alert(1)> Pay button broken"
NAME = "<img src=x onerror=alert('name')>"
HOSTILE_TEXT = (
    "<script>alert('body')</script>\n"
    "<img src=x onerror=alert(2)>\n"
    "<style>body { display: none }</style>\n"
    '<a href="javascript:alert(3)">see my screen</a>\n'
    '<svg onload="alert(4)"></svg><iframe src="javascript:alert(5)"></iframe>\n'
    "The Pay button does nothing.\n"
)
# An HTML-only reply: its markup is turned into text, and its escaped markup (`&lt;script&gt;`)
# becomes literal `<script>` text, which must again be escaped on the way out.
HOSTILE_HTML = (
    "<html><head><style>p { color: red }</style><script>alert('html')</script></head>"
    '<body onload="alert(6)"><p>Still broken. <a href="javascript:alert(7)">click</a></p>'
    "<p>&lt;script&gt;alert('escaped')&lt;/script&gt; &lt;img src=y onerror=alert(8)&gt;</p></body></html>"
)


def hostile_mail() -> bytes:
    msg = EmailMessage()
    msg["From"] = f'"{NAME}" <{MARIA}>'
    msg["To"] = SUPPORT
    msg["Subject"] = TITLE
    msg["Message-ID"] = "<hostile.1@customer.example>"
    msg.set_content(HOSTILE_TEXT)
    msg.add_alternative(f"<html><body><pre>{HOSTILE_TEXT}</pre></body></html>", subtype="html")
    return msg.as_bytes()


def hostile_reply() -> bytes:
    msg = EmailMessage()
    msg["From"] = f'"{NAME}" <{MARIA}>'
    msg["To"] = SUPPORT
    msg["Subject"] = f"Re: {TITLE}"
    msg["Message-ID"] = "<hostile.2@customer.example>"
    msg["In-Reply-To"] = "<hostile.1@customer.example>"
    msg.set_content(HOSTILE_HTML, subtype="html")
    return msg.as_bytes()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def wait_for(sink: SmtpSink, count: int, serve: ServeProcess) -> list[Captured]:
    deadline = time.monotonic() + 30
    while len(sink.captured) < count:
        assert time.monotonic() < deadline, f"{len(sink.captured)} of {count} mails sent:\n{serve.output()}"
        time.sleep(0.1)
    return list(sink.captured)


def html_part(mail: Captured) -> lxml.html.HtmlElement:
    part = mail.message.get_body(preferencelist=("html",))
    assert part is not None and part.get_content_type() == "text/html", mail.raw[:500]
    return lxml.html.document_fromstring(part.get_content())


def assert_inert(tree: lxml.html.HtmlElement) -> None:
    """Nothing in the HTML that a mail client would run, style or follow on the customer's say-so."""
    assert tree.xpath("//script | //style | //iframe | //svg | //object | //embed") == []
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), lxml.html.tostring(element)
            if name.lower() in ("href", "src", "action", "formaction"):
                assert not value.strip().lower().startswith(("javascript:", "data:")), value
        if element.tag == "img":
            assert element.get("src", "").startswith("cid:"), lxml.html.tostring(element)


def test_hostile_html_arrives_inert_in_every_notification(tmp_path: Path, sink: SmtpSink) -> None:
    port = free_port()
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", listen=f"127.0.0.1:{port}")
    config.write_text(
        config.read_text().replace(
            f'relay = "dir:{tmp_path / "outgoing"}"', f'relay = "smtp://{sink.host}:{sink.port}"'
        )
    )
    serve = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.sendmail(MARIA, [SUPPORT], hostile_mail()) == {}
        first = wait_for(sink, 2, serve)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.sendmail(MARIA, [SUPPORT], hostile_reply()) == {}
        sent = wait_for(sink, 3, serve)
    finally:
        assert serve.stop() == 0, serve.output()

    by_rcpt = {(mail.rcpt_tos, mail.message["Subject"].startswith("[SP-1]")): mail for mail in first}
    ack = by_rcpt[((MARIA,), True)]
    staff_new = by_rcpt[((TRIAGE,), True)]
    [reply_to_staff] = [mail for mail in sent[2:] if mail.rcpt_tos == (TRIAGE,)]
    for mail in (ack, staff_new, reply_to_staff):
        assert_inert(html_part(mail))

    # The customer's words are there, as text a person reads, not as markup.
    staff_text = html_part(staff_new).text_content()
    for shown in (SCRIPT, "<img src=x onerror=alert(1)>", "<style>body { display: none }</style>", NAME):
        assert shown in staff_text
    assert '<a href="javascript:alert(3)">see my screen</a>' in staff_text
    assert SCRIPT in html_part(ack).text_content()
    reply_text = html_part(reply_to_staff).text_content()
    assert "Still broken." in reply_text
    assert "<script>alert('escaped')</script>" in reply_text and "<img src=y onerror=alert(8)>" in reply_text
    assert "alert('html')" not in reply_text  # the HTML mail's own script was never text
