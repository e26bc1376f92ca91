"""Real forwards from the shared corpus (Gmail, Outlook in German and Spanish, Outlook for iOS, AOL,
Comcast, Yahoo, KMail, and originals attached whole) read by gateway/mail/forward.py: each gives the
original's sender and subject. The corpus's text samples are bodies, put into a staff mail as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mail.forward import ATTACHED, read_forward
from gateway.mail.parse import parse_mail
from tests.helpers import make_mail

READ = [
    ("crisp/emails/email_german_outlook.txt", "max.m@beispiel.de", "Ihre Anfrage"),
    ("crisp/emails/email_tricky_15_original_message_variations.txt", "sender@example.com", "RE: Test"),
    ("crisp/emails/email_ios_outlook.txt", "job-applicant-incoming-text+65701@hiringenginemail.com", None),
    ("reply-trimmer/emails/embedded_email_spanish_2.txt", "foo@bar.es", "[MP]Parser del email"),
    ("reply-trimmer/emails/forwarded_gmail.txt", "foo@discourse.org", "This email is going to be forwarded"),
    ("reply-trimmer/emails/embedded_email_10.txt", "arpit.jalan@discourse.org", "Meta Discourse update"),
    ("mail-gem/spec/fixtures/emails/plain_emails/raw_email8.eml", "xxxxxxxx@xxx.com", None),
    ("mail-gem/spec/fixtures/emails/mime_emails/raw_email_with_mimepart_without_content_type.eml",
     "roor32@gmail.com", "Est-ce toi ?"),
    ("rt/t/data/emails/crashes-file-based-parser", "1stwizard@isp.example.com",
     "[DEMOS #12148] scanning my ports"),
    ("rt/t/data/emails/nested-rfc-822", "jonas@example.com", "Re: [Para] Nivåer?"),
    ("talon/tests/fixtures/standard_replies/aol.eml", "bob@example.com", "Test"),
    ("talon/tests/fixtures/standard_replies/comcast.eml", "bob@xxx.mailgun.org", "Test"),
    ("talon/tests/fixtures/standard_replies/yahoo.eml", "bob@xxx.mailgun.org", "Test"),
]  # fmt: skip
# A marker with no header block under it names nobody: no forward to read.
NOT_READ = ["crisp/emails/email_original_message.txt", "reply-trimmer/emails/embedded_email_8.txt"]


def mail_of(path: Path):  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    if path.suffix == ".txt":
        return parse_mail(
            make_mail("Fwd: see below", data.decode("utf-8"), sender="Ana <ana@smilepass.example>")
        )
    return parse_mail(data)


@pytest.mark.parametrize(("name", "sender", "subject"), READ)
def test_real_forwards_give_their_original_sender(
    corpus_dir: Path, name: str, sender: str, subject: str | None
) -> None:
    forward = read_forward(mail_of(corpus_dir / name))
    assert forward is not None and forward.sender is not None, forward
    assert forward.sender.address == sender
    if subject is not None:
        assert forward.original.subject == subject
    if name.endswith("nested-rfc-822"):
        assert forward.style == ATTACHED


@pytest.mark.parametrize("name", NOT_READ)
def test_a_marker_without_a_header_block_is_no_forward(corpus_dir: Path, name: str) -> None:
    assert read_forward(mail_of(corpus_dir / name)) is None
