"""The media type of a MIME part (``type/subtype``, lower case), read so that a damaged Content-Type
still says what the part is.

The standard library gives everything before the first ``;`` when the value has one ``/``: a header
that lost its semicolon (``message/delivery-status charset=us-ascii``) or carries junk after the type
then names no type anyone knows, and a delivery report's status part is no longer found. The type is
the ``type/subtype`` token at the start; the rest is parameters, however badly written.
"""

from __future__ import annotations

import re
from email.message import Message

# RFC 2045 tokens: what a type and a subtype may be made of.
_TYPE = re.compile(r"[a-z0-9!#$%&'*+.^_`{|}~-]+/[a-z0-9!#$%&'*+.^_`{|}~-]+")


def media_type(part: Message) -> str:
    """``part``'s ``type/subtype``, lower case; the standard library's reading when it has no such start."""
    declared = part.get_content_type()
    match = _TYPE.match(declared)
    return match.group(0) if match else declared
