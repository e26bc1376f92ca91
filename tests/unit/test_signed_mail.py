"""Signed mail reads as its signed content, encrypted mail says so (SPEC §13): parse_mail on mails laid
out as Thunderbird, Outlook and GnuPG-based clients lay them out, with real signatures and ciphertext;
and, for any tree of parts, a signature is never an attachment."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gateway.mail.parse import parse_mail
from tests.conftest import missing_component
from tests.signed_mail import (
    Gpg,
    Identity,
    enveloped_smime,
    identity,
    opaque_smime,
    outlook_smime_signed,
    smime_p7m,
    thunderbird_smime_signed,
)

INNER = (
    b"Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe refund for order 7781 never arrived.\r\n"
    b"--in\r\nContent-Type: application/pdf; name=receipt.pdf\r\nContent-Disposition: attachment; "
    b"filename=receipt.pdf\r\n\r\n%PDF-1.4 receipt\r\n--in--\r\n"
)


@pytest.fixture(scope="module")
def signer() -> Identity:
    return identity()


@pytest.fixture(scope="module")
def recipient() -> Identity:
    return identity(rsa_key=True)


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gpg]:
    if not Gpg.available():
        missing_component("gpg is not installed (apt-get install gnupg): PGP/MIME test mails need it")
    keys = Gpg(Path(tmp_path_factory.mktemp("gnupg")))
    try:
        yield keys
    finally:
        keys.close()


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 200)).save(out, "PNG")
    return out.getvalue()


def test_thunderbird_smime_signed_mail_reads_as_its_text(signer: Identity) -> None:
    mail = parse_mail(thunderbird_smime_signed("Card declined", "My card is declined at checkout.", signer))
    assert mail.text.strip() == "My card is declined at checkout."
    assert mail.attachments == ()
    assert mail.encrypted is None


def test_outlook_smime_signed_mail_keeps_its_files_and_drops_the_signature(signer: Identity) -> None:
    shot = png(400, 300)
    raw = outlook_smime_signed(
        "Export fails", "The export fails, screenshot attached.", signer, {"export.png": shot}
    )
    mail = parse_mail(raw)
    assert mail.text.strip() == "The export fails, screenshot attached."
    assert [(a.filename, a.payload) for a in mail.attachments] == [("export.png", shot)]


def test_pgp_mime_signed_mail_reads_as_its_text(gpg: Gpg) -> None:
    mail = parse_mail(gpg.signed("Login loop", "After login I land on the login page again."))
    assert mail.text.strip() == "After login I land on the login page again."
    assert mail.attachments == ()
    assert mail.encrypted is None


@pytest.mark.parametrize(
    "content_type",
    [
        'application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"',
        'application/x-pkcs7-mime; name="smime.p7m"',  # older Outlook: no smime-type, read from the DER
        'application/octet-stream; name="smime.p7m"',  # RFC 8551 §3.2.2's other label
    ],
)
def test_opaque_signed_smime_is_read_from_inside_the_signature(signer: Identity, content_type: str) -> None:
    mail = parse_mail(smime_p7m("Refund", opaque_smime(INNER, signer), content_type))
    assert mail.text.strip() == "The refund for order 7781 never arrived."
    assert [(a.filename, a.payload) for a in mail.attachments] == [("receipt.pdf", b"%PDF-1.4 receipt")]
    assert mail.encrypted is None


@pytest.mark.parametrize(
    "content_type",
    [
        'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        'application/x-pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
        'application/x-pkcs7-mime; name="smime.p7m"',
        'application/octet-stream; name="smime.p7m"',
    ],
)
def test_smime_encrypted_mail_says_so_and_has_no_attachment(recipient: Identity, content_type: str) -> None:
    mail = parse_mail(smime_p7m("Account", enveloped_smime(INNER, recipient), content_type))
    assert mail.encrypted == "S/MIME"
    assert mail.text == "(encrypted message)"
    assert mail.attachments == ()


def test_pgp_mime_encrypted_mail_says_so_and_has_no_attachment(gpg: Gpg) -> None:
    mail = parse_mail(gpg.encrypted("Secret", "My password reset link leaks."))
    assert mail.encrypted == "PGP/MIME"
    assert mail.text == "(encrypted message)"
    assert mail.attachments == ()


def test_a_p7m_that_is_no_pkcs7_stays_an_attachment() -> None:
    mail = parse_mail(smime_p7m("Odd", b"not a PKCS#7 structure", 'application/x-pkcs7-mime; name="x.p7m"'))
    assert mail.encrypted is None
    assert [a.payload for a in mail.attachments] == [b"not a PKCS#7 structure"]


# --- any tree: a signature is never an attachment ------------------------------------------------

SIGNATURE_LABELS = [
    'application/pkcs7-signature; name="smime.p7s"',
    'application/x-pkcs7-signature; name="smime.p7s"',
    'application/pgp-signature; name="signature.asc"',
    'application/octet-stream; name="smime.p7s"',
]
MARK = b"SIGNATURE-BYTES-"


CIPHER = b"CIPHERTEXT-"
CIPHER_LABELS = [
    'application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
    'application/x-pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
]


@st.composite
def leaf(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(a part, whether it is a signature)."""
    kind = draw(st.sampled_from(["text", "html", "file", "signature", "ciphertext"]))
    if kind == "ciphertext":
        body = base64.encodebytes(CIPHER + draw(st.binary(max_size=40))).replace(b"\n", b"\r\n")
        label = draw(st.sampled_from(CIPHER_LABELS))
        return f"Content-Type: {label}\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode() + body, False
    if kind == "signature":
        label = draw(st.sampled_from(SIGNATURE_LABELS))
        body = base64.encodebytes(MARK + draw(st.binary(max_size=40))).replace(b"\n", b"\r\n")
        disposition = draw(st.sampled_from(["", "Content-Disposition: attachment\r\n"]))
        head = f"Content-Type: {label}\r\nContent-Transfer-Encoding: base64\r\n{disposition}\r\n"
        return head.encode() + body, True
    if kind == "file":
        name = draw(st.sampled_from(["log.txt", "invoice.pdf", "data.bin"]))
        return (
            f"Content-Type: application/octet-stream; name={name}\r\nContent-Disposition: attachment\r\n\r\n"
            "file content\r\n"
        ).encode(), False
    subtype = "plain" if kind == "text" else "html"
    return f"Content-Type: text/{subtype}; charset=utf-8\r\n\r\nSome words\r\n".encode(), False


def tree(depth: int = 0) -> st.SearchStrategy[tuple[bytes, bool]]:
    if depth >= 3:
        return leaf()
    return st.one_of(leaf(), multipart(depth))


@st.composite
def multipart(draw: st.DrawFn, depth: int) -> tuple[bytes, bool]:
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "signed"]))
    children = draw(st.lists(tree(depth + 1), min_size=1, max_size=4))
    boundary = f"b{depth}x{draw(st.integers(0, 10**6))}"
    params = ' protocol="application/pkcs7-signature"; micalg=sha-256;' if subtype == "signed" else ""
    out = f'Content-Type: multipart/{subtype};{params} boundary="{boundary}"\r\n\r\n'.encode()
    for body, _sig in children:
        out += f"--{boundary}\r\n".encode() + body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, any(sig for _b, sig in children)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree())
def test_no_tree_yields_a_signature_or_ciphertext_as_attachment(part: tuple[bytes, bool]) -> None:
    body, _has_signature = part
    raw = (
        b"From: ana@customer.example\r\nTo: support@smilepass.example\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        + body
    )
    mail = parse_mail(raw)
    for attachment in mail.attachments:
        assert not attachment.payload.startswith(MARK), attachment
        assert "signature" not in attachment.content_type
    assert "SIGNATURE-BYTES" not in mail.text
    # Ciphertext is never a file, and marks the mail as encrypted.
    assert not any(attachment.payload.startswith(CIPHER) for attachment in mail.attachments)
    assert (mail.encrypted == "S/MIME") == (b"smime-type=enveloped-data" in body)
    # The other files are all still there.
    assert len([a for a in mail.attachments if a.payload.strip() == b"file content"]) == body.count(
        b"file content"
    )


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("raw_email_with_nested_attachment.eml", ["truncated.png"]),  # S/MIME, Apple Mail
        ("sig_only_email.eml", []),  # PGP/MIME
        ("raw_email2.eml", []),  # S/MIME smime.p7s inside multipart/mixed
    ],
)
def test_real_signed_mail_of_the_corpus_has_no_signature_file(
    corpus_dir: Path, name: str, files: list[str]
) -> None:
    raw = (corpus_dir / "mail-gem/spec/fixtures/emails/mime_emails" / name).read_bytes()
    mail = parse_mail(raw)
    assert [a.filename for a in mail.attachments] == files
    assert mail.text.strip()
