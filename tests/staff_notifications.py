"""Generated staff notifications with files, shared by the tests that hold the directly written
bytes (gateway/notify/message.py) and the spliced blobs (gateway/notify/blob_parts.py) to what the
email package writes: headers, texts, file names and Content-IDs that stress the folding, the
encodings and the boundaries."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from gateway.domain import Address
from gateway.notify.message import AUTO_GENERATED, Headers, new_message_id, subject_for
from gateway.notify.render import Rendered

# Text as templates produce it: ASCII, accents, CJK, emoji, controls, every kind of line break,
# long lines (quoted-printable soft breaks) and lines that look like boundaries.
_PIECE = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(
        [
            "\n",
            "\r\n",
            "\r",
            " ",
            "-",
            "=",
            ".",
            "From ",
            "\n--",
            "\n--====",
            "\n--===============1234567890123456789==\n",
            "\nX-Ticketgate-Blob: " + "ab" * 32 + "\n",
            "x" * 90,
            "é" * 40,
        ]
    ),
)
TEXT = st.lists(_PIECE, max_size=20).map("".join)
_NAME = st.text(max_size=120) | st.sampled_from(["", "Maria López", 'Eve "x" <a@b>', "A" * 200])

FILENAME = st.text(max_size=120) | st.sampled_from(
    [
        "",
        "shot.png",
        "Bildschirmfoto ü.png",
        'a "quoted" \\ name.png',
        "x" * 250,
        "é" * 100,
        "  spaced  out  .png",
        "name;with,separators and spaces that go on for a while.png",
        "tab\there\nand a line break.png",
        "--===============1234567890123456789==.png",
        "日本語のスクリーンショット.png",
    ]
)
CONTENT_ID = (
    st.none()
    | st.from_regex(r"[!-;=?-~]{1,250}", fullmatch=True)
    | st.sampled_from(["shot1.tg.SP-42.o17.ab@smilepass.example", "x" * 250, "a;b,c@d"])
)


@st.composite
def headers(draw: st.DrawFn) -> Headers:
    """The headers of a staff notification, with names and a title from anywhere."""
    in_reply_to = draw(st.none() | st.sampled_from(["original@customer.example", "bad id with spaces"]))
    return Headers(
        sender=Address("support@smilepass.example", draw(_NAME)),
        to=Address("agent@smilepass.example", draw(_NAME)),
        reply_to="support+SP-42.abcdefghijklmnop@smilepass.example",
        subject=subject_for("SP-42", draw(TEXT)),
        message_id=new_message_id(ref="SP-42", outbox_id=17, domain="smilepass.example"),
        in_reply_to=in_reply_to,
        references=[mid for mid in (in_reply_to, "tg.SP-42@smilepass.example") if mid],
        auto_submitted=AUTO_GENERATED,
    )


RENDERED = st.builds(Rendered, text=TEXT, html=TEXT)

# Every boundary the email package and message.py make, and the Date: new on every build.
_BOUNDARY = re.compile(rb"={15}\d{19}==")
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def comparable(raw: bytes) -> bytes:
    """`raw` with its boundaries numbered in the order they first appear, and without its Date, so
    two builds of the same notification compare byte for byte."""
    seen: dict[bytes, bytes] = {}

    def number(match: re.Match[bytes]) -> bytes:
        return seen.setdefault(match.group(), b"BOUNDARY-%d" % len(seen))

    return _DATE.sub(b"\r\nDate: -\r\n", _BOUNDARY.sub(number, raw))
