"""Signed and encrypted mail through the whole pipeline on SQLite and PostgreSQL (SPEC §13): a signed
mail's ticket shows the signed text, its files and screenshots, and no signature; an encrypted mail
opens its ticket with "(encrypted message)" and an `encrypted` event, no file, the original kept."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from tests.conftest import missing_component
from tests.integration.processed import process
from tests.signed_mail import (
    Gpg,
    enveloped_smime,
    identity,
    opaque_smime,
    outlook_smime_signed,
    smime_p7m,
    thunderbird_smime_signed,
)


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def test_signed_and_encrypted_mail_make_their_tickets(database_url: str, tmp_path: Path) -> None:
    signer, recipient = identity(), identity(rsa_key=True)
    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlease close my account 4471.\r\n"
    mails = {
        "thunderbird": thunderbird_smime_signed("Card declined", "My card is declined at checkout.", signer),
        "outlook": outlook_smime_signed(
            "Export fails",
            "The export fails, screenshot and log attached.",
            signer,
            {"export.png": png(500, 300), "export.log": b"ERROR 42 export\n"},
        ),
        "opaque": smime_p7m(
            "Close account", opaque_smime(inner, signer), "application/pkcs7-mime; smime-type=signed-data"
        ),
        "smime-encrypted": smime_p7m(
            "Private matter",
            enveloped_smime(inner, recipient),
            'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        ),
    }
    if not Gpg.available():
        missing_component("gpg is not installed (apt-get install gnupg): PGP/MIME test mails need it")
    gpg = Gpg(tmp_path / "gnupg")
    try:
        mails["pgp-signed"] = gpg.signed("Login loop", "After login I land on the login page again.")
        mails["pgp-encrypted"] = gpg.encrypted("Password", "My reset link leaks.")
    finally:
        gpg.close()

    results = dict(zip(mails, process(database_url, tmp_path, list(mails.values())), strict=True))
    tickets = {name: done.ticket for name, done in results.items()}
    assert all(done.outcome == "ticket" and done.ticket for done in results.values()), results
    for name, done in results.items():
        assert done.stored == mails[name], f"{name}: the original is kept as it came"

    def files(name: str) -> list[str]:
        ticket = tickets[name]
        assert ticket is not None
        return sorted(a["filename"] for a in ticket["attachments"]) + sorted(
            s["filename"] for s in ticket["screenshots"]
        )

    def description(name: str) -> str:
        ticket = tickets[name]
        assert ticket is not None
        return str(ticket["description"])

    def kinds(name: str) -> list[str]:
        ticket = tickets[name]
        assert ticket is not None
        return [e["kind"] for e in ticket["events"]]

    assert description("thunderbird") == "My card is declined at checkout."
    assert files("thunderbird") == []
    assert description("outlook") == "The export fails, screenshot and log attached."
    assert files("outlook") == ["export.log", "export.png"]  # a plain attachment and a screenshot
    assert tickets["outlook"] is not None and len(tickets["outlook"]["screenshots"]) == 1
    assert description("opaque") == "Please close my account 4471."
    assert files("opaque") == []
    for name in ("thunderbird", "outlook", "opaque"):
        assert "encrypted" not in kinds(name)

    assert description("smime-encrypted") == "(encrypted message)"
    assert tickets["smime-encrypted"] is not None and tickets["smime-encrypted"]["title"] == "Private matter"
    assert files("smime-encrypted") == []
    assert kinds("smime-encrypted").count("encrypted") == 1
    [event] = [e for e in tickets["smime-encrypted"]["events"] if e["kind"] == "encrypted"]
    assert event["new"].startswith("S/MIME encrypted")

    assert description("pgp-signed") == "After login I land on the login page again."
    assert files("pgp-signed") == []
    assert description("pgp-encrypted") == "(encrypted message)"
    assert files("pgp-encrypted") == []
    assert "encrypted" in kinds("pgp-encrypted")


def test_an_encrypted_reply_joins_its_ticket_with_the_event(tmp_path: Path) -> None:
    recipient = identity(rsa_key=True)
    first = (
        b"From: Ana Lima <ana@customer.example>\r\nTo: support@smilepass.example\r\n"
        b"Subject: Refund\r\nMessage-ID: <first@customer.example>\r\n\r\nWhere is my refund?\r\n"
    )
    reply = smime_p7m(
        "Re: [SP-1] Refund",
        enveloped_smime(b"Content-Type: text/plain\r\n\r\nMy IBAN is ...\r\n", recipient),
        'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
    ).replace(b"Subject:", b"In-Reply-To: <first@customer.example>\r\nSubject:", 1)
    opened, replied = process(f"sqlite:///{tmp_path / 't.db'}", tmp_path, [first, reply])
    assert (opened.outcome, replied.outcome) == ("ticket", "reply")
    assert replied.ticket is not None
    assert replied.ticket["messages"][-1]["text"] == "(encrypted message)"
    assert [e["kind"] for e in replied.ticket["events"]].count("encrypted") == 1
    assert replied.ticket["attachments"] == []
