"""Forged senders (SPEC §11): a trusted server says the From domain's DMARC check failed, and that
domain asks receivers to reject or quarantine such mail. Such a mail still opens its ticket, but
nothing is sent to its From: that address did not write it (an acknowledgement would be backscatter).

The header is parsed per RFC 8601 by `authres` (quoted strings, comments, escapes), and only the
topmost `Authentication-Results` whose authserv-id is in `staff.trusted_authserv_ids` counts: the
trusted server writes its header on top and strips look-alikes (RFC 8601 §5), so anything lower that
claims its name came from the sender. The domain's policy is read where filters put it:
- the `policy.published-domain-policy` property (RFC 7489 §11.2 / IANA), or authres' `policy.dmarc`;
- a comment: OpenDMARC and Gmail write `dmarc=fail (p=reject dis=none) header.from=x`, Rspamd
  `dmarc=fail reason="..." header.from=x (policy=reject)`. authres drops comments, so the comments
  of each result are collected here by a small scanner that honours quoted strings and escapes.
Garbage never raises: a trusted header that cannot be parsed gives no verdict.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import authres
import authres.dmarc

log = logging.getLogger(__name__)

_FEATURES = authres.FeatureContext(authres.dmarc)
_HARSH_POLICIES = frozenset({"reject", "quarantine"})
_POLICY_PROPERTIES = frozenset({("policy", "published-domain-policy"), ("policy", "dmarc")})
# `p=reject` (OpenDMARC, Gmail) or `policy=reject` (Rspamd) inside a comment; not `sp=` or `dis=`.
_POLICY_IN_COMMENT = re.compile(r"(?<![\w.-])(?:p|policy)\s*=\s*([A-Za-z]+)")
_AUTHSERV_ID = re.compile(r"[^\s;()]+")


@dataclass(frozen=True)
class _Segment:
    """One `;`-separated part of the header value: its text (comments blanked) and its comments."""

    text: str
    comments: tuple[str, ...]


def forged_sender(
    fields: Sequence[tuple[str, str]], *, from_domain: str | None, trusted: Iterable[str]
) -> str | None:
    """Why the From is forged, for the ticket's event; None when no trusted header says so.

    `fields` is the mail's own header section, top first, lower-case names (rawmail.top_header_fields).
    """
    trusted_ids = {name.strip().lower() for name in trusted}
    domain = (from_domain or "").strip().strip(".").lower()
    if not trusted_ids or not domain:
        return None
    for name, value in fields:
        if name != "authentication-results":
            continue
        segments = _segments(value)
        found = _AUTHSERV_ID.search(segments[0].text)
        authserv_id = found.group().lower() if found else ""
        if authserv_id in trusted_ids:
            return _dmarc_verdict(value, segments, authserv_id, domain)  # the topmost trusted one only
    return None


def _dmarc_verdict(value: str, segments: list[_Segment], authserv_id: str, domain: str) -> str | None:
    try:
        header = _FEATURES.parse_value(" ".join(value.split()))
    except Exception as exc:  # authres raises its own SyntaxError, and worse, on garbage
        log.info("Authentication-Results of %s not readable, no DMARC verdict: %s", authserv_id, exc)
        return None
    results = list(header.results)
    # The segments after the authserv-id are the results, in order; comments are matched by position.
    per_result = segments[1:] if len(segments) - 1 == len(results) else [_Segment("", ())] * len(results)
    for result, segment in zip(results, per_result, strict=True):
        if str(result.method).lower() != "dmarc" or str(result.result).lower() != "fail":
            continue
        properties = {(str(p.type).lower(), str(p.name).lower()): str(p.value) for p in result.properties}
        named = properties.get(("header", "from"), "").strip().strip(".").lower()
        if named and named != domain:
            continue  # a verdict about another domain (a Sender, say) is not about this From
        policy = _policy(properties, segment.comments)
        if policy in _HARSH_POLICIES:
            return (
                f"{authserv_id} says dmarc=fail for {domain}, whose DMARC policy is {policy}: "
                "the From address did not send this mail"
            )
    return None


def _policy(properties: dict[tuple[str, str], str], comments: Sequence[str]) -> str | None:
    for key in _POLICY_PROPERTIES:
        if key in properties:
            return properties[key].strip().lower()
    for comment in comments:
        found = _POLICY_IN_COMMENT.search(comment)
        if found:
            return found.group(1).lower()
    return None


def _segments(value: str) -> list[_Segment]:
    """Split at `;` outside quoted strings and comments, collecting each part's comments (RFC 5322
    CFWS: comments nest, and a backslash escapes the next character in both)."""
    segments: list[_Segment] = []
    text: list[str] = []
    comments: list[str] = []
    comment: list[str] = []
    depth = 0
    quoted = False
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and (quoted or depth):
            pair = value[index : index + 2]
            (comment if depth else text).append(pair)
            index += 2
            continue
        if depth:
            if char == "(":
                depth += 1
                comment.append(char)
            elif char == ")":
                depth -= 1
                if depth:
                    comment.append(char)
                else:
                    comments.append("".join(comment))
                    comment = []
            else:
                comment.append(char)
        elif quoted:
            text.append(char)
            quoted = char != '"'
        elif char == '"':
            quoted = True
            text.append(char)
        elif char == "(":
            depth = 1
            text.append(" ")
        elif char == ";":
            segments.append(_Segment("".join(text), tuple(comments)))
            text, comments = [], []
        else:
            text.append(char)
        index += 1
    if comment:
        comments.append("".join(comment))
    segments.append(_Segment("".join(text), tuple(comments)))
    return segments
