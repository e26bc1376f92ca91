"""Authentication-Results read per RFC 8601 (SPEC §11): quoted strings, comments and escapes are single
tokens, only the topmost header of a trusted server counts, and anything unreadable vouches for nothing
without raising."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from gateway.mail.auth_results import (
    AuthResultsSyntaxError,
    authserv_id_of,
    parse_header,
    raw_header_values,
    trusted_results,
)
from gateway.mail.parse import parse_mail
from tests.helpers import make_mail

TRUSTED = ("mx.smilepass.example",)
HOSTILE = (
    'mx.smilepass.example; spf=pass smtp.mailfrom="x;dmarc=pass y"@evil.example; '
    "dmarc=fail header.from=smilepass.example"
)


def methods(value: str) -> list[tuple[str, str]]:
    return [(r.method, r.result) for r in parse_header(value).results]


def test_a_semicolon_inside_a_quoted_local_part_is_not_a_separator() -> None:
    header = parse_header(HOSTILE)
    assert header.authserv_id == "mx.smilepass.example"
    assert [(r.method, r.result) for r in header.results] == [("spf", "pass"), ("dmarc", "fail")]
    assert header.results[0].properties == {"smtp.mailfrom": '"x;dmarc=pass y"@evil.example'}
    assert header.results[1].properties == {"header.from": "smilepass.example"}


def test_a_pass_inside_a_comment_is_only_a_comment() -> None:
    header = parse_header("mx.smilepass.example; dkim=fail (dmarc=pass) header.d=smilepass.example")
    assert [(r.method, r.result) for r in header.results] == [("dkim", "fail")]
    assert header.results[0].comments == ("dmarc=pass",)
    nested = parse_header("mx.smilepass.example; dkim=fail (a (b; dmarc=pass) \\) c; dmarc=pass) header.d=x")
    assert [(r.method, r.result) for r in nested.results] == [("dkim", "fail")]


def test_escaped_quotes_stay_inside_the_quoted_string() -> None:
    value = (
        'mx.smilepass.example; spf=pass smtp.mailfrom="x\\";dmarc=pass \\"y"@evil.example; '
        "dmarc=fail header.from=smilepass.example"
    )
    assert methods(value) == [("spf", "pass"), ("dmarc", "fail")]
    assert parse_header(value).results[0].properties["smtp.mailfrom"] == '"x\\";dmarc=pass \\"y"@evil.example'


def test_a_folded_header_is_read_from_the_raw_mail() -> None:
    raw = (
        b"Authentication-Results: mx.smilepass.example;\r\n"
        b"\tspf=pass smtp.mailfrom=ana@smilepass.example;\r\n"
        b"\tdkim=pass (2048-bit key)\r\n"
        b"  header.d=smilepass.example header.s=tg2026;\r\n"
        b"\tdmarc=pass (p=reject dis=none) header.from=smilepass.example\r\n"
    ) + make_mail(sender="ana@smilepass.example")
    (value,) = raw_header_values(raw)
    header = parse_header(value)
    assert [(r.method, r.result) for r in header.results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dmarc", "pass"),
    ]
    assert header.results[1].properties == {"header.d": "smilepass.example", "header.s": "tg2026"}
    assert header.results[2].comments == ("p=reject dis=none",)


def test_the_raw_value_keeps_an_encoded_word_inside_its_quoted_string() -> None:
    """A quoted local part made of an RFC 2047 word that decodes to `";dmarc=pass;x="`: decoded (as
    the parser does for display) it would close the quotes; raw it is just text inside them."""
    value = (
        "mx.smilepass.example; spf=pass "
        'smtp.mailfrom="=?us-ascii?q?=22;dmarc=3Dpass;x=3D=22?="@evil.example; '
        "dmarc=fail header.from=smilepass.example"
    )
    raw = f"Authentication-Results: {value}\n".encode() + make_mail(sender="ana@smilepass.example")
    decoded = parse_mail(raw).headers["authentication-results"][0]
    assert '"";dmarc=pass;x=""' in decoded  # what a reader of decoded headers would be fooled by
    assert ("dmarc", "pass") in methods(decoded)
    (kept,) = raw_header_values(raw)
    assert methods(kept) == [("spf", "pass"), ("dmarc", "fail")]


def test_unknown_methods_and_extension_properties_are_read_and_kept() -> None:
    header = parse_header(
        "mx6.messagingengine.com; dkim=pass (2048-bit rsa key sha256) header.d=a.example "
        "header.a=rsa-sha256 x-bits=2048; dmarc=pass policy.published-domain-policy=reject "
        "header.from=a.example; x-me-sender=none; dkim/1=pass header.d=b.example; auth=pass smtp.auth=ana"
    )
    assert [(r.method, r.result) for r in header.results] == [
        ("dkim", "pass"),
        ("dmarc", "pass"),
        ("x-me-sender", "none"),
        ("dkim", "pass"),
        ("auth", "pass"),
    ]
    assert header.results[1].properties["policy.published-domain-policy"] == "reject"
    assert header.results[0].properties["x-bits"] == "2048"


@pytest.mark.parametrize(
    "value",
    [
        # Gmail, with a version, and a comment before the authserv-id
        "mx.google.com;       dkim=pass header.i=@example.com header.s=20230601 header.b=Ab/c+1;"
        "       arc=pass (i=1 spf=pass spfdomain=example.com);       spf=pass (google.com: domain of "
        "x@example.com designates 1.2.3.4 as permitted sender) smtp.mailfrom=x@example.com;"
        "       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com",
        "mx.smilepass.example 1; none",
        '(our MX) mx.smilepass.example (v1); dmarc=pass reason="aligned dkim" header.from=smilepass.example',
        "mx.smilepass.example; dmarc=pass header.from=smilepass.example;",  # a trailing ";"
        '"mx.smilepass.example"; dmarc=pass',
    ],
)
def test_real_world_forms_parse(value: str) -> None:
    assert parse_header(value).authserv_id.endswith(("mx.google.com", "mx.smilepass.example"))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        # authres reads this as dmarc=pass without header.from: it skips what it cannot parse
        (
            'mx.smilepass.example; spf=pass smtp.mailfrom="a"b;dmarc=pass header.x="@evil.example; '
            "dmarc=fail header.from=smilepass.example",
            "unterminated quoted string",
        ),
        (
            "mx.smilepass.example; dmarc=pass header.from=smilepass.example (unterminated",
            "unterminated comment",
        ),
        ("mx.smilepass.example; dmarc=pass) header.from=smilepass.example", "')' without '('"),
        ("mx.smilepass.example; dmarc=pass\x00 header.from=smilepass.example", "unexpected"),
        ("mx.smilepass.example; dmarc", "expected method=result"),
        ("mx.smilepass.example; dmarc=pass header.from", "name=value"),
        ("mx.smilepass.example; dmarc=pass header.from=", "name=value"),
        ('mx.smilepass.example; dmarc="pass"', "expected method=result"),
        ("mx.smilepass.example dmarc=pass", "after the authserv-id"),
        ("mx.smilepass.example 2; dmarc=pass", "unknown version"),
        ("mx.smilepass.example; dmarc/x=pass", "bad method version"),
        ("mta1007.mail.yahoo.com  from=x.example; domainkeys=neutral (no sig)", "after the authserv-id"),
        ("", "no authserv-id"),
        ("; dmarc=pass", "no authserv-id"),
    ],
)
def test_unreadable_headers_raise_only_the_syntax_error(value: str, problem: str) -> None:
    with pytest.raises(AuthResultsSyntaxError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_header(value)


def test_the_authserv_id_is_read_even_when_the_rest_is_not() -> None:
    assert (
        authserv_id_of('(x) MX.SmilePass.example; spf=pass smtp.mailfrom="unterminated')
        == "mx.smilepass.example"
    )
    assert authserv_id_of("(unterminated mx.smilepass.example; dmarc=pass") is None
    assert authserv_id_of("   ") is None


def test_only_the_topmost_trusted_header_counts() -> None:
    found = trusted_results(
        [
            "mx.other.example; dmarc=pass header.from=smilepass.example",  # not trusted: passed over
            "mx.smilepass.example; dmarc=fail header.from=smilepass.example",
            "mx.smilepass.example; dmarc=pass header.from=smilepass.example",  # came with the mail
            "MX.SMILEPASS.EXAMPLE; dkim=pass header.d=smilepass.example",
        ],
        TRUSTED,
    )
    assert found.authserv_id == "mx.smilepass.example"
    assert found.header is not None and [(r.method, r.result) for r in found.header.results] == [
        ("dmarc", "fail")
    ]
    assert found.ignored == ("mx.smilepass.example", "mx.smilepass.example")


def test_an_unreadable_topmost_trusted_header_hides_nothing_below_it() -> None:
    found = trusted_results(
        ['mx.smilepass.example; dmarc=pass smtp.mailfrom="open', "mx.smilepass.example; dmarc=pass"], TRUSTED
    )
    assert found.authserv_id == "mx.smilepass.example" and found.header is None
    assert found.problem == "unterminated quoted string"
    assert found.ignored == ("mx.smilepass.example",)
    assert trusted_results(["mx.smilepass.example; dmarc=pass"], ()).authserv_id is None


def test_garbage_never_raises_out() -> None:
    """Mutations of real headers (a bounded, seeded run): each parses or raises only the syntax error,
    and choosing the trusted header never raises at all."""
    seeds = [
        HOSTILE,
        "mx.smilepass.example 1; dkim=pass (2048-bit (nested) key) header.d=smilepass.example header.b=abc",
        'mx.smilepass.example; dmarc=pass reason="x\\"y" header.from=smilepass.example; none',
    ]
    alphabet = '();="\\ \t\r\n./@=:-_0aZ\x00\x7f\u00fc\udcff'
    rnd = random.Random(8601)
    for _ in range(3000):
        text = list(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            at = rnd.randrange(len(text) + 1)
            action = rnd.randrange(3)
            if action == 0:
                text.insert(at, rnd.choice(alphabet))
            elif text:
                at = min(at, len(text) - 1)
                if action == 1:
                    del text[at]
                else:
                    text[at] = rnd.choice(alphabet)
        value = "".join(text)
        with contextlib.suppress(AuthResultsSyntaxError):
            parse_header(value)
        trusted_results([value, HOSTILE], TRUSTED)


def test_raw_header_values_on_garbage() -> None:
    assert raw_header_values(b"") == ()
    assert raw_header_values(b"\xff\xfe\x00 not a mail") == ()
    raw = b"Authentication-Results: mx.smilepass.example; dmarc=pass header.from=\xe4.example\n\nbody"
    (value,) = raw_header_values(raw)
    assert parse_header(value).results[0].result == "pass"


@pytest.mark.corpus
def test_every_authentication_results_in_the_corpus_is_read_without_raising(corpus_dir: Path) -> None:
    """Gmail's headers there parse; Yahoo's of 2006 (`mta… from=x; domainkeys=neutral`, text between
    the authserv-id and the first `;`) is not RFC 8601 and is unreadable, which is not an error."""
    values = [
        value for path in sorted(corpus_dir.rglob("*.eml")) for value in raw_header_values(path.read_bytes())
    ]
    assert len(values) >= 10
    for value in values:
        if "yahoo.com" in value:
            with pytest.raises(AuthResultsSyntaxError):
                parse_header(value)
        else:
            assert parse_header(value).authserv_id == "mx.google.com"
        trusted_results([value], ("mx.google.com", "mta113.sbc.mail.mud.yahoo.com"))
