"""Who is staff (SPEC §5): a staff address authenticated by a staff reply address, a DKIM signature
(real RSA keys made here, the key published through an injected DNS lookup) or trusted
Authentication-Results; anything else is a customer, with the reason."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from dkim.canonicalization import CanonicalizationPolicy

from gateway.config import StaffSettings
from gateway.mail.parse import parse_mail
from gateway.pipeline.staff_auth import (
    StaffMethod,
    aligned,
    authenticate_staff,
    authentication_results_pass,
    parse_authentication_results,
)
from tests.helpers import make_mail

STAFF = StaffSettings(
    addresses=("ana@smilepass.example",),
    triage=None,
    security_contact=None,
    trusted_authserv_ids=("mx.smilepass.example",),
)
SELECTOR = b"tg2026"


def new_key() -> tuple[bytes, str]:
    """(PEM private key, the TXT record that publishes its public half)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    return new_key()


def dns(records: dict[bytes, str]) -> Callable[..., bytes | None]:
    """A resolver that knows only `records`, as dkimpy's dnsfunc: name -> TXT bytes."""

    def lookup(name: bytes, timeout: float = 5) -> bytes | None:
        found = records.get(name)
        return found.encode() if found is not None else None

    return lookup


def signed(
    raw: bytes, private: bytes, *, domain: bytes = b"smilepass.example", length: bool = False
) -> bytes:
    signature = dkim.sign(
        raw, SELECTOR, domain, private, include_headers=[b"from", b"subject"], length=length
    )
    return signature + raw


def check(raw: bytes, *, audience: str | None = None, lookup: Callable[..., bytes | None] | None = None):  # type: ignore[no-untyped-def]
    mail = parse_mail(raw)
    assert mail.sender is not None
    return authenticate_staff(
        mail,
        raw,
        sender=mail.sender.address,
        staff=STAFF,
        token_audience=audience,
        dnsfunc=lookup or dns({}),
    )


ANA = "Ana <ana@smilepass.example>"


def test_a_customer_is_never_staff() -> None:
    auth = check(make_mail(sender="maria@customer.example"), audience="staff")
    assert not auth.is_staff and not auth.staff_address


def test_a_staff_reply_address_authenticates() -> None:
    auth = check(make_mail(sender=ANA), audience="staff")
    assert auth.is_staff and auth.method is StaffMethod.REPLY_ADDRESS


def test_a_requester_reply_address_does_not() -> None:
    auth = check(make_mail(sender=ANA), audience="requester")
    assert not auth.is_staff and auth.staff_address
    assert "not authenticated" in auth.reason and "no DKIM signature" in auth.reason


def test_a_forged_from_without_token_or_signature_is_a_customer() -> None:
    auth = check(make_mail(sender=ANA, headers={"Received": "from evil.example by mx"}))
    assert not auth.is_staff
    assert auth.reason.startswith(
        "ana@smilepass.example is a staff address but the mail is not authenticated"
    )


def test_a_valid_dkim_signature_of_the_from_domain_authenticates(key: tuple[bytes, str]) -> None:
    private, record = key
    raw = signed(make_mail(sender=ANA), private)
    auth = check(raw, lookup=dns({b"tg2026._domainkey.smilepass.example.": record}))
    assert auth.is_staff and auth.method is StaffMethod.DKIM


def test_a_signature_from_a_parent_domain_is_aligned(key: tuple[bytes, str]) -> None:
    private, record = key
    raw = signed(make_mail(sender="ana@eu.smilepass.example"), private)
    staff = StaffSettings(("ana@eu.smilepass.example",), None, None, ())
    mail = parse_mail(raw)
    auth = authenticate_staff(
        mail,
        raw,
        sender="ana@eu.smilepass.example",
        staff=staff,
        token_audience=None,
        dnsfunc=dns({b"tg2026._domainkey.smilepass.example.": record}),
    )
    assert auth.is_staff


def test_a_signature_with_the_wrong_key_fails(key: tuple[bytes, str]) -> None:
    private, _ = key
    _, other_record = new_key()
    raw = signed(make_mail(sender=ANA), private)
    auth = check(raw, lookup=dns({b"tg2026._domainkey.smilepass.example.": other_record}))
    assert not auth.is_staff and "does not verify" in auth.reason


def test_a_signature_broken_by_a_changed_body_fails(key: tuple[bytes, str]) -> None:
    private, record = key
    raw = signed(make_mail(sender=ANA, body="#close\nDone.\n"), private)
    tampered = raw.replace(b"#close", b"#open!")
    auth = check(tampered, lookup=dns({b"tg2026._domainkey.smilepass.example.": record}))
    assert not auth.is_staff


def test_an_attackers_own_valid_signature_is_not_for_the_from_domain(key: tuple[bytes, str]) -> None:
    private, record = key
    raw = signed(make_mail(sender=ANA), private, domain=b"evil.example")
    auth = check(raw, lookup=dns({b"tg2026._domainkey.evil.example.": record}))
    assert not auth.is_staff and "not for the From domain smilepass.example" in auth.reason


def test_text_appended_after_the_signed_length_does_not_authenticate(key: tuple[bytes, str]) -> None:
    private, record = key
    lookup = dns({b"tg2026._domainkey.smilepass.example.": record})
    raw = signed(make_mail(sender=ANA, body="Thanks, looking into it.\n"), private, length=True)
    assert check(raw, lookup=lookup).is_staff  # l= equal to the body: nothing is unsigned
    appended = raw + b"#resolved\n#assign ana@smilepass.example\n"
    assert dkim.verify(appended, dnsfunc=lookup)  # dkimpy is content with the signed part
    auth = check(appended, lookup=lookup)
    assert not auth.is_staff
    assert "covers only part of the body (l=): 26 of 68 bytes signed" in auth.reason


def sign_without_from(raw: bytes, private: bytes, *, domain: bytes = b"smilepass.example") -> bytes:
    """A valid relaxed/relaxed rsa-sha256 signature whose h= is only Subject and Date, made by hand
    (dkimpy refuses to sign without From, but other signers need not)."""
    headers, body = dkim.rfc822_parse(raw)
    policy = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    body_hash = base64.b64encode(hashlib.sha256(policy.canonicalize_body(body)).digest())
    value = (
        b" v=1; a=rsa-sha256; c=relaxed/relaxed; d="
        + domain
        + b"; s="
        + SELECTOR
        + b"; h=subject:date; bh="
        + body_hash
        + b"; b="
    )
    picked = [next(h for h in headers if h[0].lower() == name) for name in (b"subject", b"date")]
    canonical = policy.canonicalize_headers([*picked, [b"DKIM-Signature", value]])
    data = b"".join(name + b":" + text for name, text in canonical).removesuffix(b"\r\n")
    key = serialization.load_pem_private_key(private, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return b"DKIM-Signature:" + value + base64.b64encode(signature) + b"\n" + raw


def test_a_signature_that_does_not_cover_from_does_not_authenticate(key: tuple[bytes, str]) -> None:
    private, record = key
    lookup = dns({b"tg2026._domainkey.smilepass.example.": record})
    raw = sign_without_from(make_mail(sender=ANA), private)
    assert dkim.verify(raw, dnsfunc=lookup)  # a valid signature, aligned: only h= is wrong
    auth = check(raw, lookup=lookup)
    assert not auth.is_staff
    assert "DKIM signature of smilepass.example does not cover the From header (h=)" in auth.reason


def test_a_key_missing_from_dns_fails(key: tuple[bytes, str]) -> None:
    private, _ = key
    auth = check(signed(make_mail(sender=ANA), private), lookup=dns({}))
    assert not auth.is_staff


@pytest.mark.parametrize(
    "header",
    [
        "mx.smilepass.example; dmarc=pass (p=reject) header.from=smilepass.example",
        "mx.smilepass.example 1; dkim=pass (2048-bit key) header.d=smilepass.example header.b=abc",
        "MX.SmilePass.example; spf=fail; dkim=pass header.i=@smilepass.example",
        "mx.smilepass.example; dmarc=pass",
    ],
)
def test_trusted_authentication_results_authenticate(header: str) -> None:
    auth = check(make_mail(sender=ANA, headers={"Authentication-Results": header}))
    assert auth.is_staff and auth.method is StaffMethod.AUTHENTICATION_RESULTS


@pytest.mark.parametrize(
    "header",
    [
        "mx.evil.example; dmarc=pass header.from=smilepass.example",  # not a trusted server
        "mx.smilepass.example; dmarc=fail header.from=smilepass.example",
        "mx.smilepass.example; dmarc=pass header.from=evil.example",
        "mx.smilepass.example; dkim=pass header.d=evil.example",
        "mx.smilepass.example; spf=pass smtp.mailfrom=smilepass.example",
        "mx.smilepass.example; dkim=fail (dkim=pass header.d=smilepass.example)",  # only a comment
    ],
)
def test_other_authentication_results_do_not(header: str) -> None:
    assert not check(make_mail(sender=ANA, headers={"Authentication-Results": header})).is_staff


def test_authentication_results_parsing() -> None:
    server, results = parse_authentication_results(
        "mx.example 1; dkim=pass (good (nested) comment) header.d=Example.COM; dmarc=none"
    )
    assert server == "mx.example"
    assert [(r.method, r.result, r.properties) for r in results] == [
        ("dkim", "pass", {"header.d": "example.com"}),
        ("dmarc", "none", {}),
    ]
    assert not authentication_results_pass(["mx.example; dmarc=pass"], from_domain="example.com", trusted=())


def test_alignment() -> None:
    assert aligned("smilepass.example", "smilepass.example")
    assert aligned("smilepass.example", "eu.smilepass.example")
    assert not aligned("eu.smilepass.example", "smilepass.example")
    assert not aligned("example", "smilepass.example")  # a bare top-level name aligns with nothing
    assert not aligned("pass.example", "smilepass.example")


# --- Authentication-Results as SPEC §11 reads them --------------------------------------------------


def with_headers(raw: bytes, *lines: str) -> bytes:
    """`raw` with header lines put on top, as the servers it passed through would add them."""
    return "".join(f"{line}\n" for line in lines).encode() + raw


HOSTILE = (
    "Authentication-Results: mx.smilepass.example; spf=pass "
    'smtp.mailfrom="x;dmarc=pass y"@evil.example; dmarc=fail header.from=smilepass.example'
)


def test_a_pass_quoted_in_the_envelope_sender_is_not_a_pass() -> None:
    auth = check(with_headers(make_mail(sender=ANA), HOSTILE))
    assert not auth.is_staff and auth.staff_address
    assert "the Authentication-Results of mx.smilepass.example says spf=pass, dmarc=fail" in auth.reason


def test_a_lower_header_claiming_the_trusted_server_is_ignored() -> None:
    raw = with_headers(
        make_mail(sender=ANA),
        "Authentication-Results: mx.smilepass.example; dmarc=fail header.from=smilepass.example",
        "Authentication-Results: mx.smilepass.example; dmarc=pass header.from=smilepass.example",
    )
    auth = check(raw)
    assert not auth.is_staff
    assert "1 lower Authentication-Results header(s) claiming mx.smilepass.example ignored" in auth.reason


def test_the_topmost_trusted_header_passes_even_with_an_untrusted_one_above() -> None:
    raw = with_headers(
        make_mail(sender=ANA),
        "Authentication-Results: mx.relay.example; dmarc=fail header.from=smilepass.example",
        "Authentication-Results: mx.smilepass.example; dmarc=pass header.from=smilepass.example",
        "Authentication-Results: mx.smilepass.example; dmarc=fail header.from=smilepass.example",
    )
    assert check(raw).method is StaffMethod.AUTHENTICATION_RESULTS


@pytest.mark.parametrize(
    "header",
    [
        "Authentication-Results: mx.smilepass.example; dkim=fail (dmarc=pass) header.d=smilepass.example",
        "Authentication-Results: mx.smilepass.example; spf=pass "
        'smtp.mailfrom="x\\";dmarc=pass y"@evil.example; dmarc=fail header.from=smilepass.example',
        # RFC 2047 inside the quotes: decoded it would read `"";dmarc=pass;x=""`
        "Authentication-Results: mx.smilepass.example; spf=pass "
        'smtp.mailfrom="=?us-ascii?q?=22;dmarc=3Dpass;x=3D=22?="@evil.example; dmarc=none',
    ],
)
def test_a_pass_in_a_comment_or_behind_escapes_is_not_a_pass(header: str) -> None:
    auth = check(with_headers(make_mail(sender=ANA), header))
    assert not auth.is_staff and "says" in auth.reason


def test_a_folded_trusted_header_passes() -> None:
    raw = with_headers(
        make_mail(sender=ANA),
        "Authentication-Results: mx.smilepass.example;\n\tspf=pass smtp.mailfrom=ana@smilepass.example;\n"
        "\tdkim=pass (2048-bit key)\n  header.d=smilepass.example header.s=tg2026",
    )
    assert check(raw).method is StaffMethod.AUTHENTICATION_RESULTS


def test_an_unreadable_trusted_header_vouches_for_nothing() -> None:
    raw = with_headers(
        make_mail(sender=ANA),
        "Authentication-Results: mx.smilepass.example; "
        'spf=pass smtp.mailfrom="a"b;dmarc=pass x="@e; dmarc=fail',
        "Authentication-Results: mx.smilepass.example; dmarc=pass header.from=smilepass.example",
    )
    auth = check(raw)
    assert not auth.is_staff
    assert (
        "the Authentication-Results of mx.smilepass.example is unreadable (unterminated quoted string), "
        "so it vouches for nothing (1 lower" in auth.reason
    )
