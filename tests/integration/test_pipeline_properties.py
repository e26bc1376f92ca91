"""Property-based tests over the whole pipeline: whatever bytes arrive, each accepted mail ends as
exactly one outcome, never as an unexpected exception, and never costs more than 2 s of CPU.

The mails are generated (random headers, charsets Python knows and some it does not, nested
multiparts, attachments) and then mutated the way real mail breaks: truncated anywhere, headers
duplicated and reordered, random bytes in headers and bodies, boundaries broken or missing,
nesting 50 deep, huge header lines. Real corpus mails are mutated the same way.

The suite runs a bounded number of examples; `TICKETGATE_FUZZ_EXAMPLES=2000 pytest
tests/integration/test_pipeline_properties.py` is the longer run docs/development/index.md describes.
"""

from __future__ import annotations

import encodings.aliases
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition

from gateway.config import settings_from_mapping
from gateway.daemon.runtime import Runtime, build_runtime
from gateway.domain import Envelope
from gateway.pipeline.processor import Outcome
from tests.helpers import TEST_SECRET

EXAMPLES = int(os.environ.get("TICKETGATE_FUZZ_EXAMPLES", "40"))
CPU_SECONDS_PER_MAIL = 2.0
ONE_MB = 1024 * 1024

PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    derandomize=os.environ.get("TICKETGATE_FUZZ_RANDOM", "") == "",
)

# Every charset label Python knows, plus labels mail clients write that it does not.
KNOWN_CHARSETS = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))
UNKNOWN_CHARSETS = ["x-unknown", "utf-7-imap", "ks_c_5601-1987", "x-mac-cyrillic-bogus", "", '""', "utf8;"]
CHARSETS = st.sampled_from(KNOWN_CHARSETS + UNKNOWN_CHARSETS)

SENDERS = st.sampled_from(
    [
        "Maria Lopez <maria@customer.example>",
        "maria@customer.example",
        "<>",
        "Maria Lopez",
        '"a@b" <>',
        "undisclosed-recipients:;",
        "=?utf-8?q?Mar=C3=ADa?= <maria@customer.example>",
        "=?bogus?b?////?= <x@y.example>",
        '"unterminated <x@y.example>',
        "mailer-daemon@mx.example",
        "",
    ]
)
TEXT = st.text(max_size=300)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    base = tmp_path_factory.mktemp("properties")
    built = build_runtime(
        settings_from_mapping(
            {
                "gateway": {
                    "addresses": ["support@smilepass.example"],
                    "ticket_prefix": "SP",
                    "secret": TEST_SECRET,
                },
                "database": {"url": f"sqlite:///{base / 'properties.db'}"},
                "storage": {"blob_dir": str(base / "blobs")},
                "outbound": {"relay": f"dir:{base / 'outgoing'}"},
            },
            environ={},
        )
    )
    yield built
    built.close()


# --- generating mails -------------------------------------------------------------------------


def _encode(text: str, charset: str) -> bytes:
    try:
        return text.encode(charset.strip('";'))
    except (LookupError, UnicodeError, ValueError):
        return text.encode("utf-8", "surrogatepass")


@st.composite
def header_lines(draw: st.DrawFn) -> list[bytes]:
    charset = draw(CHARSETS)
    lines = [
        b"From: " + _encode(draw(SENDERS), "utf-8"),
        b"To: support@smilepass.example",
        b"Subject: " + _encode(draw(TEXT).replace("\n", " ").replace("\r", " "), charset),
    ]
    if draw(st.booleans()):
        lines.append(b"Message-ID: <" + _encode(draw(st.text(max_size=40)), "utf-8") + b"@x.example>")
    if draw(st.booleans()):
        lines.append(b"Date: " + _encode(draw(st.text(max_size=40)), "utf-8"))
    for name in draw(
        st.lists(st.sampled_from(["Sender", "Reply-To", "In-Reply-To", "References"]), max_size=3)
    ):
        lines.append(name.encode() + b": " + _encode(draw(SENDERS), "utf-8"))
    for name in draw(
        st.lists(
            st.sampled_from(
                ["Auto-Submitted: auto-replied", "Precedence: bulk", "X-Autoreply: yes", "List-Id: <l.x>"]
            ),
            max_size=2,
        )
    ):
        lines.append(name.encode())
    return lines


@st.composite
def leaf_part(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["plain", "html", "image", "octet", "rfc822"]))
    charset = draw(CHARSETS)
    cte = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "bogus", None]))
    headers = {
        "plain": f"Content-Type: text/plain; charset={charset}",
        "html": f"Content-Type: text/html; charset={charset}",
        "image": 'Content-Type: image/png; name="shot.png"\nContent-Disposition: attachment',
        "octet": 'Content-Type: application/octet-stream; name="../../etc/passwd"',
        "rfc822": "Content-Type: message/rfc822",
    }[kind]
    if cte:
        headers += f"\nContent-Transfer-Encoding: {cte}"
    if kind == "image":
        body = draw(st.binary(max_size=400))
    elif kind == "rfc822":
        body = b"\n".join(draw(header_lines())) + b"\n\n" + _encode(draw(TEXT), "utf-8")
    else:
        text = draw(TEXT)
        if kind == "html":
            text = f"<html><body><p>{text}</p><blockquote>old</blockquote></body></html>"
        body = _encode(text, charset)
    return headers.encode() + b"\n\n" + body


@st.composite
def mime_tree(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth >= 3 or draw(st.booleans()):
        return draw(leaf_part())
    boundary = draw(st.sampled_from(["b1", "==b2==", "x" * 70, "", "a b"])) + str(depth)
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest"]))
    children = draw(st.lists(mime_tree(depth + 1), min_size=0, max_size=3))
    parts = b"".join(b"--" + boundary.encode() + b"\n" + child + b"\n" for child in children)
    closing = b"--" + boundary.encode() + b"--\n" if draw(st.booleans()) else b""
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'.encode()
    return head + b"\n\n" + b"preamble\n" + parts + closing


@st.composite
def generated_mail(draw: st.DrawFn) -> bytes:
    return b"\n".join(draw(header_lines())) + b"\nMIME-Version: 1.0\n" + draw(mime_tree())


def deep_nesting(levels: int) -> bytes:
    """A multipart nested `levels` deep, the innermost holding a line of text."""
    body = b"Content-Type: text/plain\n\ninnermost\n"
    for level in range(levels):
        boundary = f"n{level}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\n\n--'
            + boundary
            + b"\n"
            + body
            + b"\n--"
            + boundary
            + b"--\n"
        )
    return b"From: deep@customer.example\nSubject: nested\nMIME-Version: 1.0\n" + body


# --- mutating them ----------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """`base` broken the ways real mail breaks, one or several at once."""
    raw = base
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        raw = mutation(draw, raw)
    return raw


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return head.split(b"\n"), (sep + body)


def truncate(draw: st.DrawFn, raw: bytes) -> bytes:
    return raw[: draw(st.integers(0, len(raw)))]


def duplicate_and_reorder_headers(draw: st.DrawFn, raw: bytes) -> bytes:
    lines, rest = _split(raw)
    lines = lines + draw(st.lists(st.sampled_from(lines), max_size=4)) if lines else lines
    return b"\n".join(draw(st.permutations(lines))) + rest


def random_bytes(draw: st.DrawFn, raw: bytes) -> bytes:
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(st.binary(min_size=1, max_size=64)) + raw[at:]


def break_boundaries(draw: st.DrawFn, raw: bytes) -> bytes:
    replacement = draw(st.sampled_from([b"", b"--", b"--wrong", b"-- b1", b"\x00"]))
    return raw.replace(b"\n--", b"\n" + replacement, draw(st.integers(1, 5)))


def huge_header_line(draw: st.DrawFn, raw: bytes) -> bytes:
    name = draw(st.sampled_from([b"Subject", b"X-Long", b"References", b"To", b"Content-Type"]))
    value = draw(st.sampled_from([b"a", b"a ", b"=?utf-8?b?w6k=?= ", b"<x@y> "])) * draw(
        st.integers(1000, 40000)
    )
    return name + b": " + value + b"\n" + raw


def crlf_or_cr(draw: st.DrawFn, raw: bytes) -> bytes:
    return raw.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n\r"])))


def leading_junk(draw: st.DrawFn, raw: bytes) -> bytes:
    junk = draw(
        st.sampled_from([b"From x@y Mon Jan 1 00:00:00 2026\n", b"\xef\xbb\xbf", b"\n\n", b"=====\n"])
    )
    return junk + raw


MUTATIONS = [
    truncate,
    duplicate_and_reorder_headers,
    random_bytes,
    break_boundaries,
    huge_header_line,
    crlf_or_cr,
    leading_junk,
]


# --- the property -----------------------------------------------------------------------------


def assert_one_outcome(runtime: Runtime, raw: bytes, envelope_from: str) -> None:
    """Store `raw` as accepted mail, process it, and check the outcome is one and expected.

    With TICKETGATE_FUZZ_SAVE=DIR a failing mail is written there before the assertion propagates,
    so a long run's findings can be replayed with `ticketgate ingest` after hypothesis has shrunk them.
    """
    try:
        _check_one_outcome(runtime, raw, envelope_from)
    except AssertionError as exc:
        save = os.environ.get("TICKETGATE_FUZZ_SAVE")
        if save:
            Path(save).mkdir(parents=True, exist_ok=True)
            name = f"{abs(hash(raw)):x}"
            (Path(save) / f"{name}.eml").write_bytes(raw)
            (Path(save) / f"{name}.txt").write_text(str(exc), encoding="utf-8")
        raise


def _check_one_outcome(runtime: Runtime, raw: bytes, envelope_from: str) -> None:
    envelope = Envelope(mail_from=envelope_from, rcpt_tos=("support@smilepass.example",), source="pipe")
    inbox_id = runtime.inbox.add(raw, envelope)
    processor = runtime.processor("properties")
    started = time.thread_time()
    results = processor.process_ids([inbox_id])
    cpu = time.thread_time() - started
    assert len(results) == 1, results
    [result] = results
    assert result.outcome is not Outcome.RETRY, result.detail
    stored = runtime.inbox.get(inbox_id)
    assert stored is not None
    summary, _raw = stored
    assert summary.state in ("done", "quarantined"), summary.state
    if summary.state == "quarantined":
        # A quarantine with a traceback is an exception nobody expected; a reason alone is a verdict
        # (not a mail, over a limit) that a person can read and act on.
        assert summary.error_detail is None, f"unexpected exception: {summary.error}\n{summary.error_detail}"
        assert summary.error
    if len(raw) < ONE_MB:
        assert cpu < CPU_SECONDS_PER_MAIL, f"{cpu:.2f}s of CPU for a {len(raw)}-byte mail"


@PROPERTY_SETTINGS
@given(raw=generated_mail(), envelope_from=st.sampled_from(["", "maria@customer.example", "<>"]))
def test_generated_mail_ends_in_exactly_one_outcome(runtime: Runtime, raw: bytes, envelope_from: str) -> None:
    assert_one_outcome(runtime, raw, envelope_from)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_mutated_generated_mail_ends_in_exactly_one_outcome(runtime: Runtime, data: st.DataObject) -> None:
    raw = data.draw(mutated(data.draw(generated_mail())))
    assert_one_outcome(runtime, raw, "maria@customer.example")


@pytest.mark.parametrize("levels", [20, 50])
def test_deep_nesting_ends_in_one_outcome(runtime: Runtime, levels: int) -> None:
    assert_one_outcome(runtime, deep_nesting(levels), "deep@customer.example")


def _corpus_seeds(corpus: Path) -> list[bytes]:
    patterns = ("rt/t/data/emails/**/*", "mail-gem/spec/fixtures/emails/**/*.eml", "bounces/*.eml")
    paths = sorted(p for pattern in patterns for p in corpus.glob(pattern) if p.is_file())
    return [p.read_bytes() for p in paths if p.stat().st_size < 200_000]


@pytest.fixture(scope="module")
def corpus_seeds(corpus_dir: Path) -> list[bytes]:
    seeds = _corpus_seeds(corpus_dir)
    assert len(seeds) > 100, "the corpus looks incomplete"
    return seeds


@pytest.mark.corpus
def test_mutated_corpus_mail_ends_in_exactly_one_outcome(runtime: Runtime, corpus_seeds: list[bytes]) -> None:
    """Real mail, broken the ways real mail breaks, still ends in exactly one outcome.

    In whole-suite runs on two xdist workers (2026-12-01, three runs in a row) hypothesis stopped
    this property with `FlakyStrategyDefinition` ("data generation behaved differently between test
    cases"): its own bookkeeping of the draws, not a mail that failed the property, and never when
    the file runs alone; the cause was not found. Then the property is run once more, on examples
    drawn from another seed; a mail that fails it fails the test either way."""

    def check(data: st.DataObject) -> None:
        base = data.draw(st.sampled_from(corpus_seeds))
        assert_one_outcome(runtime, data.draw(mutated(base)), "")

    try:
        PROPERTY_SETTINGS(given(data=st.data())(check))()
    except FlakyStrategyDefinition:
        again = settings(PROPERTY_SETTINGS, derandomize=False, database=None)
        again(given(data=st.data())(check))()
