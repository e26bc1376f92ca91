"""Outlook's winmail.dat (SPEC §13): every real TNEF payload of the corpus, sent the way Outlook and
Exchange send it, through the whole pipeline on SQLite and PostgreSQL; and payloads that are not
TNEF, or that make the TNEF library loop, still make their ticket with the reason."""

from __future__ import annotations

import base64
import re
import smtplib
import struct
import time
from pathlib import Path

import pytest

from gateway.mail import tnef
from tests.helpers import ServeProcess, free_port, ticketgate, write_config
from tests.integration.processed import SUPPORT, process


def outlook_mail(name: str, payload: bytes, *, text: str = "", part_name: str = "winmail.dat") -> bytes:
    """A mail as Outlook writes it with "Rich Text" on: a text part (often blank) and the TNEF part."""
    body = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        (
            f"From: Heather Phillips <heather@customer.example>\r\n"
            f"To: {SUPPORT}\r\n"
            f"Subject: TNEF {name}\r\n"
            f"Message-ID: <{name}.tnef@customer.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "X-Mailer: Microsoft Outlook 16.0\r\n"
            'Content-Type: multipart/mixed; boundary="----_=_NextPart_000_01C0"\r\n'
            "\r\n"
            "This message is in MIME format.\r\n"
            "\r\n"
            "------_=_NextPart_000_01C0\r\n"
            'Content-Type: text/plain; charset="iso-8859-1"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
            f"{text}\r\n"
            "\r\n"
            "------_=_NextPart_000_01C0\r\n"
            f'Content-Type: application/ms-tnef; name="{part_name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{part_name}"\r\n'
            "\r\n"
        ).encode("ascii")
        + body
        + b"\r\n------_=_NextPart_000_01C0--\r\n"
    )


# What each corpus payload must give: words of the description, the files kept as attachments, the
# screenshots. Tiny inline pictures (signature logos under 64 px) are no screenshots (SPEC §6).
EXPECTED: dict[str, tuple[str, set[str], set[str]]] = {
    "body": ("THE BILL OF RIGHTS", set(), set()),  # an HTML body only
    "data-before-name": ("asdf", {"AUTOEXEC.BAT", "CONFIG.SYS", "boot.ini"}, set()),
    # Nothing inside (a read receipt, with trailing bytes after it): the winmail.dat itself is kept.
    "garbage-at-end": ("", {"winmail.dat"}, set()),
    "long-filename": ("temp. license for QARun 4.7", {"allproductsmar2000.dat"}, set()),  # RTF body
    "missing-filenames": (
        "Sue has encountered a Date problem",
        {"generpts.src", "TechlibDEC99.doc", "TechlibDEC99-JAN00.doc", "TechlibNOV99.doc"},
        set(),
    ),
    "multi-name-property": ("", {"winmail.dat"}, set()),
    "one-file": ("", {"AUTHORS"}, set()),
    "rtf": ("aafgag'alga'kgk", set(), set()),
    "triples": ("Sample description", set(), set()),
    "two-files": ("", {"AUTHORS", "README"}, set()),
    "umlaut": ("TEST äöü", {"UmlautAnhang-äüö.txt"}, {"TBZ PARIV GmbH.jpg"}),  # image003.jpg: 38x25
    "unicode-mapi-attr-name": ("", {"spaconsole2.cfg"}, set()),  # three 48x48 inline PNGs
    "unicode-mapi-attr": ("hello world", {"example.dat"}, set()),
}


@pytest.mark.corpus
def test_every_corpus_winmail_dat_opens_into_its_ticket(
    corpus_dir: Path, database_url: str, tmp_path: Path
) -> None:
    payloads = {path.stem: path.read_bytes() for path in sorted((corpus_dir / "tnef").glob("*.tnef"))}
    assert set(payloads) == set(EXPECTED), "the corpus's TNEF folder changed"
    names = list(payloads)
    raws = [outlook_mail(n, payloads[n]) for n in names]
    results = process(database_url, tmp_path, raws)

    for name, raw, done in zip(names, raws, results, strict=True):
        words, files, shots = EXPECTED[name]
        ticket = done.ticket
        assert done.outcome == "ticket" and ticket is not None, name
        assert done.stored == raw  # the original, winmail.dat and all, is kept
        assert ticket["title"] == f"TNEF {name}"
        assert words in ticket["description"], (name, ticket["description"])
        assert "cid:" not in ticket["description"]
        assert {a["filename"] for a in ticket["attachments"]} == files, name
        assert {s["filename"] for s in ticket["screenshots"]} == shots, name
        assert not any(e["kind"] == "attachment_unreadable" for e in ticket["events"]), name

    umlaut = dict(zip(names, results, strict=True))["umlaut"].ticket
    assert umlaut is not None
    [shot] = umlaut["screenshots"]
    assert (shot["width"], shot["height"], shot["content_type"]) == (100, 66, "image/png")
    [text_file] = umlaut["attachments"]
    assert text_file["size"] == 14


def test_the_mails_own_text_wins_over_the_winmail_dat_body(
    corpus_dir: Path, database_url: str, tmp_path: Path
) -> None:
    payload = (corpus_dir / "tnef" / "long-filename.tnef").read_bytes()
    raw = outlook_mail("own-text", payload, text="Please renew the QARun licence for our team.")
    [done] = process(database_url, tmp_path, [raw])
    ticket = done.ticket
    assert done.outcome == "ticket" and ticket is not None
    assert ticket["description"] == "Please renew the QARun licence for our team."
    assert [a["filename"] for a in ticket["attachments"]] == ["allproductsmar2000.dat"]


def _tnef_object(name: int, kind: int, data: bytes) -> bytes:
    return struct.pack("<BHHI", 1, name, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


_HEAD = struct.pack("<IH", 0x223E9F78, 1)
# tnefparse trusts counts: these loop for hours (a property count of 2**32-1), or grow a list until
# memory runs out (a multi-valued short with a count of 2**32-16). Both are 30 bytes long.
LOOPING = _HEAD + _tnef_object(0x9003, 6, struct.pack("<I", 0xFFFFFFFF) + bytes(8))
GROWING = _HEAD + _tnef_object(0x9003, 6, struct.pack("<IHHI", 1, 0x1002, 0x0001, 0xFFFFFFF0) + bytes(8))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"MZ\x90\x00 this is no TNEF at all " * 20, "not TNEF"),
        (_HEAD + _tnef_object(0x8000, 6, b"\x05" + bytes(11)), "tnefparse could not read it"),
        (LOOPING, "took too long"),
        (GROWING, "took too long|MemoryError"),  # whichever limit it reaches first
    ],
    ids=["not-tnef", "bad-sender-triple", "looping", "growing"],
)
def test_an_unreadable_winmail_dat_still_makes_the_ticket_with_the_reason(
    payload: bytes, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tnef, "READ_SECONDS", 1)  # the real limit is 10 s; the loops would take hours
    raw = outlook_mail("broken", payload, text="The export crashes, see the attached file.")
    [done] = process(f"sqlite:///{tmp_path / 't.db'}", tmp_path, [raw])
    ticket = done.ticket
    assert done.outcome == "ticket" and ticket is not None
    assert done.stored == raw
    assert ticket["description"] == "The export crashes, see the attached file."
    [kept] = ticket["attachments"]
    assert kept["filename"] == "winmail.dat" and kept["size"] == len(payload)
    [event] = [e for e in ticket["events"] if e["kind"] == "attachment_unreadable"]
    assert event["new"].startswith("winmail.dat: could not be read as Outlook TNEF: ")
    assert re.search(why, event["new"]), event["new"]


def test_a_winmail_dat_labelled_octet_stream_is_read_by_its_bytes(corpus_dir: Path, tmp_path: Path) -> None:
    payload = (corpus_dir / "tnef" / "two-files.tnef").read_bytes()
    raw = outlook_mail("octet", payload, part_name="ATT00001.dat").replace(
        b"application/ms-tnef", b"application/octet-stream"
    )
    [done] = process(f"sqlite:///{tmp_path / 't.db'}", tmp_path, [raw])
    ticket = done.ticket
    assert ticket is not None
    assert sorted(a["filename"] for a in ticket["attachments"]) == ["AUTHORS", "README"]


@pytest.mark.corpus
def test_a_winmail_dat_over_smtp_into_the_daemon(corpus_dir: Path, tmp_path: Path) -> None:
    """The reader's child process started from the daemon's worker thread."""
    port = free_port()
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'desk.db'}", listen=f"127.0.0.1:{port}")
    running = ServeProcess(["--config", str(config)], tmp_path, port)
    try:
        raw = outlook_mail("umlaut", (corpus_dir / "tnef" / "umlaut.tnef").read_bytes())
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.sendmail("heather@customer.example", [SUPPORT], raw) == {}
        deadline = time.monotonic() + 30
        while not (found := ticketgate("tickets", "list", "--json", config=config).json()):
            assert time.monotonic() < deadline, "no ticket"
            time.sleep(0.5)
        [ticket] = found
        assert ticket["description"].startswith("TEST äöü")
        assert [s["filename"] for s in ticket["screenshots"]] == ["TBZ PARIV GmbH.jpg"]
        assert [a["filename"] for a in ticket["attachments"]] == ["UmlautAnhang-äüö.txt"]
    finally:
        running.stop()
