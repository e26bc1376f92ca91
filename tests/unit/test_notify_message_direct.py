"""A notification without image parts is written directly instead of through the MIME classes
(cheaper); it must be the very bytes the MIME classes give — same headers, folding, encodings —
but for the two values that are new on every build (the boundary and the Date)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.header import Header

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain import Address
from gateway.notify.message import (
    AUTO_GENERATED,
    AUTO_REPLIED,
    Headers,
    _fold,
    _mime_message,
    build_message,
    new_message_id,
    subject_for,
)
from gateway.notify.render import Rendered

_BOUNDARY = re.compile(rb"={15}\d{19}==")
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")

# Text as templates produce it: ASCII, accents, CJK, emoji, controls, every kind of line break,
# long lines (quoted-printable soft breaks) and lines that look like boundaries.
_PIECE = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(["\n", "\r\n", "\r", " ", "-", "=", ".", "From ", "--====", "x" * 90, "é" * 40]),
)
_TEXT = st.lists(_PIECE, max_size=20).map("".join)
_NAME = st.text(max_size=120) | st.sampled_from(["", "Maria López", 'Eve "x" <a@b>', "A" * 200])


def _same(raw: bytes) -> bytes:
    return _DATE.sub(b"\r\nDate: -\r\n", _BOUNDARY.sub(b"BOUNDARY", raw))


@settings(max_examples=300, deadline=None)
@given(
    text=_TEXT,
    html=_TEXT,
    title=_TEXT,
    to_name=_NAME,
    desk=_NAME,
    in_reply_to=st.none() | st.sampled_from(["original@customer.example", "bad id with spaces"]),
    answer=st.booleans(),
)
def test_the_direct_bytes_are_the_mime_classes_bytes(
    text: str, html: str, title: str, to_name: str, desk: str, in_reply_to: str | None, answer: bool
) -> None:
    headers = Headers(
        sender=Address("support@smilepass.example", desk),
        to=Address("maria@customer.example", to_name),
        reply_to="support+SP-42.abcdefghijklmnop@smilepass.example",
        subject=subject_for("SP-42", title),
        message_id=new_message_id(ref="SP-42", outbox_id=17, domain="smilepass.example"),
        in_reply_to=in_reply_to,
        references=[mid for mid in (in_reply_to, "tg.SP-42@smilepass.example") if mid],
        auto_submitted=AUTO_REPLIED if answer else AUTO_GENERATED,
    )
    rendered = Rendered(text=text, html=html)
    direct = build_message(headers, rendered)
    assert _same(direct) == _same(_mime_message(headers, rendered, ()))
    # And a reader gets the texts back (line ends as the wire has them).
    parsed = message_from_bytes(direct, policy=policy.default)
    plain, rich = (part.get_content() for part in parsed.iter_parts())  # type: ignore[attr-defined]
    crlf = re.compile(r"\r\n|\r|\n")
    assert crlf.sub("\n", plain) == crlf.sub("\n", text)
    assert crlf.sub("\n", rich) == crlf.sub("\n", html)


_ID_WORD = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=90)


@settings(max_examples=2000, deadline=None)
@given(
    words=st.lists(
        _ID_WORD | st.sampled_from(["<a@b>", "<" + "x" * 70 + "@y>", "a;b", "a,b"]), min_size=1, max_size=12
    ),
    name=st.sampled_from(["References", "In-Reply-To", "X"]),
)
def test_words_fold_as_the_email_package_folds_them(words: list[str], name: str) -> None:
    value = " ".join(words)
    folded = Header(value, header_name=name).encode(linesep="\r\n", maxlinelen=78)
    expected = f"{name}: {folded}\r\n"
    assert _fold(name, value) == expected
