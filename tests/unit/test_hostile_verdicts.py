"""The verdicts behind the outcomes `spam` and the forged-sender rule (SPEC §11), on header sections
as filters write them, plus their config keys and `inbox list --since`; the whole way over SMTP is in
tests/integration/test_held_outcomes.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from gateway.cli.inbox import parse_since
from gateway.config import DEFAULT_SPAM_HEADERS, ConfigErrors, settings_from_mapping
from gateway.mail.rawmail import top_header_fields
from gateway.pipeline.forged_sender import forged_sender
from gateway.pipeline.spam import spam_verdict

TRUSTED = ("mx.smilepass.example",)


def fields(*lines: str, body: str = "hello\n") -> list[tuple[str, str]]:
    return top_header_fields(("\r\n".join(lines) + "\r\n\r\n" + body).encode())


def forged(*auth_results: str, from_domain: str = "bank.example") -> str | None:
    lines = [f"Authentication-Results: {value}" for value in auth_results]
    return forged_sender(fields(*lines, f"From: ceo@{from_domain}"), from_domain=from_domain, trusted=TRUSTED)


# --- spam verdicts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["X-Spam-Flag: YES", "x-spam-flag: yes", "X-Spam: Yes", "X-SPAM:   yes  ", "X-Spam-Flag:\r\n YES"],
)
def test_the_default_verdicts_match_whatever_their_case_and_folding(header: str) -> None:
    found = spam_verdict(fields("From: a@b.example", header), DEFAULT_SPAM_HEADERS)
    assert found is not None and found.lower().replace(" ", "").startswith(header.split(":")[0].lower())


@pytest.mark.parametrize(
    "header", ["X-Spam-Flag: NO", "X-Spam: yesterday", "X-Spam-Level: ***", "X-Spam: no"]
)
def test_other_values_are_no_verdict(header: str) -> None:
    assert spam_verdict(fields("From: a@b.example", header), DEFAULT_SPAM_HEADERS) is None


def test_a_status_line_matches_on_its_verdict_word() -> None:
    configured = (("x-spam-status", "yes"),)
    spam = fields("X-Spam-Status: Yes, score=7.1 required=5.0 tests=BAYES_99")
    ham = fields("X-Spam-Status: No, score=0.1 required=5.0")
    assert spam_verdict(spam, configured) == "x-spam-status: Yes, score=7.1 required=5.0 tests=BAYES_99"
    assert spam_verdict(ham, configured) is None


def test_a_sender_cannot_hide_the_filters_verdict_with_one_of_their_own() -> None:
    both = fields("X-Spam-Flag: YES", "Received: from mx", "X-Spam-Flag: NO", "From: a@b.example")
    assert spam_verdict(both, DEFAULT_SPAM_HEADERS) is not None


def test_a_verdict_inside_a_forwarded_message_is_not_about_this_mail() -> None:
    inner = EmailMessage()
    inner["From"] = "spammer@junk.example"
    inner["Subject"] = "cheap pills"
    inner["X-Spam-Flag"] = "YES"
    inner.set_content("buy now")
    outer = EmailMessage()
    outer["From"] = "maria@customer.example"
    outer["Subject"] = "Fwd: is this phishing?"
    outer.set_content("Look at what I got.")
    outer.add_attachment(inner)
    raw = outer.as_bytes()
    assert b"X-Spam-Flag: YES" in raw
    assert spam_verdict(top_header_fields(raw), DEFAULT_SPAM_HEADERS) is None


def test_spam_headers_are_configurable_and_checked() -> None:
    base = {"gateway": {"secret": "x" * 32}}
    custom = settings_from_mapping({**base, "security": {"spam_headers": ["X-Rspamd-Action: reject"]}})
    assert custom.security.spam_headers == (("x-rspamd-action", "reject"),)
    assert settings_from_mapping(base).security.spam_headers == DEFAULT_SPAM_HEADERS
    with pytest.raises(ConfigErrors) as raised:
        settings_from_mapping({**base, "security": {"spam_headers": ["X-Spam-Flag YES", "X Bad: y"]}})
    assert [e.key for e in raised.value.errors] == ["security.spam_headers[0]", "security.spam_headers[1]"]
    assert "Header-Name: value" in str(raised.value)


def test_the_flood_limit_is_configurable_and_zero_turns_it_off() -> None:
    base = {"gateway": {"secret": "x" * 32}}
    assert settings_from_mapping(base).limits.new_tickets_per_sender_per_hour == 30
    off = settings_from_mapping({**base, "limits": {"new_tickets_per_sender_per_hour": 0}})
    assert off.limits.new_tickets_per_sender_per_hour == 0
    with pytest.raises(ConfigErrors) as raised:
        settings_from_mapping({**base, "limits": {"new_tickets_per_sender_per_hour": -1}})
    assert raised.value.errors[0].key == "limits.new_tickets_per_sender_per_hour"


# --- forged senders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        # OpenDMARC
        "mx.smilepass.example; dmarc=fail (p=reject dis=none) header.from=bank.example",
        # Gmail: upper case, with sp= and dis= beside p=
        "mx.smilepass.example; dkim=pass header.i=@x.example; spf=pass smtp.mailfrom=a@x.example;"
        " dmarc=fail (p=REJECT sp=NONE dis=QUARANTINE) header.from=bank.example",
        # Rspamd: the policy in a comment after the property
        'mx.smilepass.example; dmarc=fail reason="No valid SPF, No valid DKIM" header.from=bank.example'
        " (policy=quarantine)",
        # the registered property
        "mx.smilepass.example; dmarc=fail header.from=bank.example policy.published-domain-policy=reject",
        # folded over lines, a version, comments everywhere
        "mx.smilepass.example (our MX) 1;\r\n\tdmarc=fail\r\n (p=quarantine; dis=none)"
        "\r\n header.from=Bank.Example",
    ],
)
def test_a_trusted_dmarc_failure_under_reject_or_quarantine_is_a_forged_sender(value: str) -> None:
    found = forged(value)
    assert found is not None
    assert "mx.smilepass.example says dmarc=fail for bank.example" in found


@pytest.mark.parametrize(
    ("values", "why"),
    [
        (["mx.smilepass.example; dmarc=fail (p=none dis=none) header.from=bank.example"], "policy none"),
        (["mx.smilepass.example; dmarc=fail (sp=reject) header.from=bank.example"], "only sp="),
        (["mx.smilepass.example; dmarc=fail header.from=bank.example"], "no policy given"),
        (["mx.smilepass.example; dmarc=pass (p=reject) header.from=bank.example"], "a pass"),
        (["mx.smilepass.example; dmarc=fail (p=reject) header.from=other.example"], "another domain"),
        (["mx.evil.example; dmarc=fail (p=reject) header.from=bank.example"], "untrusted server"),
        (["mx.smilepass.example; spf=fail (dmarc=fail p=reject) smtp.mailfrom=bank.example"], "a comment"),
        (
            ['mx.smilepass.example; spf=pass smtp.mailfrom="x;dmarc=fail (p=reject) y"@evil.example'],
            "a quoted string",
        ),
        (
            [r'mx.smilepass.example; spf=pass smtp.mailfrom="a\";dmarc=fail (p=reject) b"@evil.example'],
            "escaped quotes",
        ),
        (
            [
                "mx.smilepass.example; dmarc=pass header.from=bank.example",
                "mx.smilepass.example; dmarc=fail (p=reject) header.from=bank.example",
            ],
            "a lower header claiming the trusted id",
        ),
        (["mx.smilepass.example; dmarc=fail (p=reject) header.from=bank.example;;; ((("], "garbage"),
    ],
)
def test_no_verdict_without_a_trusted_harsh_failure_for_this_from(values: list[str], why: str) -> None:
    assert forged(*values) is None, why


def test_only_the_topmost_trusted_header_counts_even_below_untrusted_ones() -> None:
    assert (
        forged(
            "mx.other.example; dmarc=pass header.from=bank.example",
            "mx.smilepass.example; dmarc=fail (p=reject) header.from=bank.example",
        )
        is not None
    )


def test_no_trusted_servers_configured_means_no_verdict() -> None:
    header = "Authentication-Results: mx.smilepass.example; dmarc=fail (p=reject) header.from=bank.example"
    assert forged_sender(fields(header), from_domain="bank.example", trusted=()) is None


_PIECES = [*'abc.=;()"\\ @\t-xyzp', "dmarc", "fail", "reject", "header.from=", "bank.example", "\r\n "]


def test_garbage_never_raises() -> None:
    """2,000 seeded random header values built from the characters that matter to the grammar."""
    rng = random.Random(8601)
    for _ in range(2000):
        value = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 40)))
        for prefix in ("mx.smilepass.example;", "mx.smilepass.example; dmarc=fail ", ""):
            result = forged_sender(
                [("authentication-results", prefix + value)], from_domain="bank.example", trusted=TRUSTED
            )
            assert result is None or "bank.example" in result


def test_since_takes_iso_times_and_spans_ago() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-25", now) == datetime(2026, 11, 25, tzinfo=UTC)
    assert parse_since("2026-11-25T10:00+01:00", now) == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert parse_since("yesterday-ish", now) is None
