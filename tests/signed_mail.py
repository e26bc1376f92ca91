"""Signed and encrypted mail as real clients write it, with real signatures and real ciphertext.

S/MIME signatures and envelopes are made with the `cryptography` package (OpenSSL underneath, as in
Thunderbird and Outlook); the MIME around them is laid out as Thunderbird and Outlook lay it out.
PGP/MIME is made with the machine's gpg, in a throw-away home, laid out as Thunderbird (Enigmail's
successor) writes it; without gpg the tests that need it are skipped.
"""

from __future__ import annotations

import base64
import datetime
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

SENDER = "Ana Lima <ana@customer.example>"
SUPPORT = "support@smilepass.example"


@dataclass(frozen=True)
class Identity:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate


def identity(*, rsa_key: bool = False) -> Identity:
    """A self-signed S/MIME certificate for the sender (RSA where it must receive encrypted mail)."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ana@customer.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("ana@customer.example")]), False)
        .sign(key, hashes.SHA256())
    )
    return Identity(key, cert)


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _head(subject: str, content_type: str, extra: str = "") -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@customer.example>\r\nMIME-Version: 1.0\r\n{extra}"
        f"Content-Type: {content_type}\r\n"
    ).encode()


def detached_smime(content: bytes, who: Identity) -> bytes:
    """A real detached S/MIME signature (DER) over ``content``, the signed entity in canonical CRLF."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(who.cert, who.key, hashes.SHA256())  # type: ignore[arg-type]
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
    )


def opaque_smime(content: bytes, who: Identity) -> bytes:
    """A real opaque S/MIME signature: the signed entity inside the PKCS#7 SignedData (DER)."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(who.cert, who.key, hashes.SHA256())  # type: ignore[arg-type]
        .sign(serialization.Encoding.DER, [])
    )


def enveloped_smime(content: bytes, recipient: Identity) -> bytes:
    """Real S/MIME enveloped data (DER) for ``recipient``'s RSA certificate."""
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(recipient.cert)
        .encrypt(serialization.Encoding.DER, [])
    )


def thunderbird_smime_signed(subject: str, text: str, who: Identity) -> bytes:
    """Thunderbird's S/MIME layout: `multipart/signed` with `application/pkcs7-signature` smime.p7s."""
    content = (
        b"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\n" + text.encode() + b"\r\n"
    )
    boundary = "------------ms010203040506070809000102"
    return (
        _head(
            subject,
            f'multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n'
            f' boundary="{boundary}"',
        )
        + b"\r\nThis is a cryptographically signed message in MIME format.\r\n\r\n"
        + f"--{boundary}\r\n".encode()
        + content
        + f"\r\n--{boundary}\r\n".encode()
        + b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment; filename="smime.p7s"\r\n'
        + b"Content-Description: S/MIME Cryptographic Signature\r\n\r\n"
        + _b64(detached_smime(content, who))
        + f"\r\n--{boundary}--\r\n\r\n".encode()
    )


def outlook_smime_signed(subject: str, text: str, who: Identity, files: dict[str, bytes]) -> bytes:
    """Outlook's S/MIME layout: `multipart/signed` (x-pkcs7-signature) around multipart/mixed with
    a multipart/alternative body and the files."""
    html = f"<html><body><p>{text}</p></body></html>"
    parts = [
        b'Content-Type: multipart/alternative; boundary="----=_NextPart_002_0011_01DB"\r\n\r\n'
        b"------=_NextPart_002_0011_01DB\r\n"
        b'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
        + text.encode()
        + b"\r\n\r\n------=_NextPart_002_0011_01DB\r\n"
        b'Content-Type: text/html; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
        + html.encode()
        + b"\r\n\r\n------=_NextPart_002_0011_01DB--\r\n"
    ]
    for name, data in files.items():
        parts.append(
            f'Content-Type: application/octet-stream; name="{name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'.encode()
            + _b64(data)
        )
    inner = b'Content-Type: multipart/mixed; boundary="----=_NextPart_001_0010_01DB"\r\n\r\n'
    for part in parts:
        inner += b"------=_NextPart_001_0010_01DB\r\n" + part + b"\r\n"
    inner += b"------=_NextPart_001_0010_01DB--\r\n"
    outer = "----=_NextPart_000_000F_01DB"
    return (
        _head(
            subject,
            f'multipart/signed;\r\n\tprotocol="application/x-pkcs7-signature";\r\n\tmicalg=2.16.840.1.101.3.4.2.1;\r\n\tboundary="{outer}"',
            "X-Mailer: Microsoft Outlook 16.0\r\n",
        )
        + b"\r\nThis is a multipart message in MIME format.\r\n\r\n"
        + f"--{outer}\r\n".encode()
        + inner
        + f"\r\n--{outer}\r\n".encode()
        + b'Content-Type: application/x-pkcs7-signature;\r\n\tname="smime.p7s"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n"
        + b'Content-Disposition: attachment;\r\n\tfilename="smime.p7s"\r\n\r\n'
        + _b64(detached_smime(inner, who))
        + f"\r\n--{outer}--\r\n".encode()
    )


def smime_p7m(subject: str, der: bytes, content_type: str) -> bytes:
    """A whole mail that is one `.p7m` (enveloped or opaque-signed), as Outlook sends it."""
    return (
        _head(subject, content_type)
        + b'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n'
        + b"Content-Description: S/MIME Encrypted Message\r\n\r\n"
        + _b64(der)
    )


class Gpg:
    """gpg in a throw-away home with one key that signs and one subkey that encrypts."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.run("--quick-gen-key", "Ana Lima <ana@customer.example>", "future-default", "default", "1d")

    @staticmethod
    def available() -> bool:
        return shutil.which("gpg") is not None

    def run(self, *args: str, data: bytes = b"") -> bytes:
        done = subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--pinentry-mode", "loopback",
             "--passphrase", "", "--no-auto-key-locate", "--trust-model", "always", *args],
            input=data, capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"], check=False, timeout=30
        )

    def signed(self, subject: str, text: str) -> bytes:
        """Thunderbird's PGP/MIME signed layout (RFC 3156), with protected headers."""
        content = (
            b'Content-Type: multipart/mixed; boundary="------------mixed01"; protected-headers="v1"\r\n'
            + f"Subject: {subject}\r\n\r\n--------------mixed01\r\n".encode()
            + b"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
            + b"Content-Transfer-Encoding: 7bit\r\n\r\n"
            + text.encode()
            + b"\r\n\r\n--------------mixed01--\r\n"
        )
        signature = self.run("--armor", "--detach-sign", "--digest-algo", "SHA256", data=content)
        boundary = "------------sig01"
        return (
            _head(
                subject,
                "multipart/signed; micalg=pgp-sha256;\r\n"
                f' protocol="application/pgp-signature";\r\n boundary="{boundary}"',
            )
            + b"\r\nThis is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n"
            + f"--{boundary}\r\n".encode()
            + content
            + f"\r\n--{boundary}\r\n".encode()
            + b'Content-Type: application/pgp-signature; name="OpenPGP_signature.asc"\r\n'
            + b"Content-Description: OpenPGP digital signature\r\n"
            + b'Content-Disposition: attachment; filename="OpenPGP_signature.asc"\r\n\r\n'
            + signature.replace(b"\n", b"\r\n")
            + f"\r\n--{boundary}--\r\n".encode()
        )

    def encrypted(self, subject: str, text: str) -> bytes:
        """Thunderbird's PGP/MIME encrypted layout (RFC 3156)."""
        inner = b"Content-Type: text/plain; charset=UTF-8\r\n\r\n" + text.encode() + b"\r\n"
        armored = self.run("--armor", "--encrypt", "-r", "ana@customer.example", data=inner)
        boundary = "------------enc01"
        return (
            _head(
                subject,
                f'multipart/encrypted;\r\n protocol="application/pgp-encrypted";\r\n boundary="{boundary}"',
            )
            + b"\r\nThis is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"
            + f"--{boundary}\r\n".encode()
            + b"Content-Type: application/pgp-encrypted\r\n"
            + b"Content-Description: PGP/MIME version identification\r\n\r\n"
            + b"Version: 1\r\n\r\n"
            + f"--{boundary}\r\n".encode()
            + b'Content-Type: application/octet-stream; name="encrypted.asc"\r\n'
            + b"Content-Description: OpenPGP encrypted message\r\n"
            + b'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n'
            + armored.replace(b"\n", b"\r\n")
            + f"\r\n--{boundary}--\r\n".encode()
        )
