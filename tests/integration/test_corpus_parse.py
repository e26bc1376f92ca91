"""The real-world corpus through parse_mail: no exception, no hang, a subject and a text for every mail."""

from __future__ import annotations

import random
import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from gateway.errors import NotAMailError
from gateway.mail.html_text import html_to_text
from gateway.mail.parse import looks_like_mail, parse_mail

pytestmark = pytest.mark.corpus

# Speed is measured in bench/ (bench_pipeline.py prints "parse only" mails/s), never asserted here;
# the pytest timeout below catches a hang.


def corpus_mails(corpus_dir: Path) -> list[Path]:
    mails = sorted(
        [
            *corpus_dir.glob("mail-gem/spec/fixtures/emails/**/*.eml"),
            *corpus_dir.glob("talon/tests/fixtures/**/*.eml"),
        ]
    )
    # The corpus has 103 mail-gem and 13 talon mails; an empty glob must not pass as "all parsed".
    assert len(mails) >= 110, f"corpus looks incomplete: {len(mails)} mails under {corpus_dir}"
    return mails


@pytest.mark.timeout(300)
def test_every_corpus_mail_parses_with_a_subject_and_a_text(corpus_dir: Path) -> None:
    problems: list[str] = []
    for path in corpus_mails(corpus_dir):
        parsed = parse_mail(path.read_bytes())
        name = str(path.relative_to(corpus_dir))
        if not isinstance(parsed.subject, str) or not isinstance(parsed.text, str):
            problems.append(f"{name}: subject or text is not a str")
        if "\x00" in parsed.text or "\n " in parsed.subject:
            problems.append(f"{name}: NUL in text or unfolded subject")
        if parsed.date is not None and parsed.date.tzinfo is None:
            problems.append(f"{name}: naive date")
    assert problems == []


def _stdlib_body_text(raw: bytes) -> str:
    """What the standard library calls the body, as an independent witness; "" when it finds none."""
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        content = part.get_content() if part is not None else ""
    except (LookupError, ValueError, KeyError, AttributeError):
        return ""
    return content if isinstance(content, str) else ""


def test_a_body_text_is_found_wherever_the_email_package_finds_one(corpus_dir: Path) -> None:
    missed = []
    for path in corpus_mails(corpus_dir):
        raw = path.read_bytes()
        witness = _stdlib_body_text(raw)
        if re.search(r"\w", html_to_text(witness)) and not parse_mail(raw).text.strip():
            missed.append(str(path.relative_to(corpus_dir)))
    assert missed == []


def test_standard_client_replies_keep_their_new_text(corpus_dir: Path) -> None:
    replies = sorted((corpus_dir / "talon/tests/fixtures/standard_replies").glob("*.eml"))
    assert len(replies) >= 12
    for path in replies:
        parsed = parse_mail(path.read_bytes())
        # Thunderbird's reply is below the quote; every client's new text is the line "Hello".
        assert "Hello" in [line.strip() for line in parsed.text.splitlines()], path.name
        assert parsed.sender is not None, path.name


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("mail-gem/spec/fixtures/emails/multi_charset/japanese.eml", "まみむめも"),
        ("mail-gem/spec/fixtures/emails/multi_charset/japanese_iso_2022.eml", "まみむめも"),
        ("mail-gem/spec/fixtures/emails/rfc2822/example13.eml", "Saying Hello"),
        ("mail-gem/spec/fixtures/emails/rfc6532/utf8_headers.eml", "Säying Hello"),
        (
            "mail-gem/spec/fixtures/emails/plain_emails/raw_email_incorrect_header.eml",
            "Stop adware/spyware once and for all.",
        ),
        (
            "mail-gem/spec/fixtures/emails/error_emails/invalid_subject_characters.eml",
            "Formação FrenetikPolis:",
        ),
    ],
)
def test_subjects_of_damaged_and_foreign_mail(corpus_dir: Path, name: str, subject: str) -> None:
    assert parse_mail((corpus_dir / name).read_bytes()).subject.startswith(subject)


def test_attached_message_in_corpus_stays_one_attachment(corpus_dir: Path) -> None:
    path = corpus_dir / "mail-gem/spec/fixtures/emails/attachment_emails/attachment_message_rfc822.eml"
    parsed = parse_mail(path.read_bytes())

    attached = [a for a in parsed.attachments if a.content_type == "message/rfc822"]
    assert len(attached) == 1
    inner = parse_mail(attached[0].payload)
    assert inner.text.strip() and inner.text.strip() not in parsed.text


def test_html_replies_convert_to_readable_text(corpus_dir: Path) -> None:
    pages = sorted((corpus_dir / "talon/tests/fixtures/html_replies").glob("*.html"))
    assert len(pages) >= 9
    for path in pages:
        text = html_to_text(path.read_bytes().decode("utf-8", "replace"))
        squeezed = re.sub(r"\s+", "", text)
        assert squeezed.startswith("Hi.Iamfine.Thanks,Alex"), path.name
        assert "Hello!Howareyou?" in squeezed, path.name
        assert not re.search(r"</?[a-z]+[ >]|\*\*|^#", text, re.MULTILINE), path.name


def test_mutated_corpus_mails_never_raise(corpus_dir: Path) -> None:
    """Truncated, bit-flipped and spliced copies of real mail: a ParsedMail or NotAMailError, nothing else."""
    mails = [path.read_bytes() for path in corpus_mails(corpus_dir)]
    rng = random.Random(20250304)
    for _ in range(600):
        raw = bytearray(rng.choice(mails))
        cut = rng.randrange(len(raw))
        operation = rng.randrange(4)
        if operation == 0:
            del raw[cut:]
        elif operation == 1:
            for _ in range(rng.randrange(1, 20)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif operation == 2:
            raw[cut:cut] = rng.randbytes(rng.randrange(1, 200))
        else:
            start = rng.randrange(len(raw))
            raw[cut:cut] = raw[start : start + rng.randrange(500)]
        data = bytes(raw)
        try:
            parsed = parse_mail(data)
        except NotAMailError:
            assert not looks_like_mail(data)
            continue
        assert isinstance(parsed.subject, str) and isinstance(parsed.text, str)
        parsed.text.encode("utf-8")  # no lone surrogates: the store and the logs need valid text
