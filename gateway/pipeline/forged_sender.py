"""Forged senders (SPEC §11): a trusted server says the From domain's DMARC check failed, and that
domain asks receivers to reject or quarantine such mail. Such a mail still opens its ticket, but
nothing is sent to its From: that address did not write it (an acknowledgement would be backscatter).

The header is read by the same RFC 8601 parser as staff authentication (`auth_results`: quoted
strings, comments, escapes; raw bytes, never RFC 2047-decoded), and only the topmost
`Authentication-Results` whose authserv-id is in `staff.trusted_authserv_ids` counts: the trusted
server writes its header on top and strips look-alikes (RFC 8601 §5), so anything lower that claims
its name came from the sender. The domain's policy is read where filters put it:
- the `policy.published-domain-policy` property (RFC 7489 §11.2 / IANA), or `policy.dmarc`;
- a comment: OpenDMARC and Gmail write `dmarc=fail (p=reject dis=none) header.from=x`, Rspamd
  `dmarc=fail reason="..." header.from=x (policy=reject)`.
Garbage never raises: a trusted header that cannot be parsed gives no verdict.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from gateway.mail.auth_results import AuthResult, trusted_results

log = logging.getLogger(__name__)

_HARSH_POLICIES = frozenset({"reject", "quarantine"})
_POLICY_PROPERTIES = ("policy.published-domain-policy", "policy.dmarc")
# `p=reject` (OpenDMARC, Gmail) or `policy=reject` (Rspamd) inside a comment; not `sp=` or `dis=`.
_POLICY_IN_COMMENT = re.compile(r"(?<![\w.-])(?:p|policy)\s*=\s*([A-Za-z]+)")


def forged_sender(
    fields: Sequence[tuple[str, str]], *, from_domain: str | None, trusted: Iterable[str]
) -> str | None:
    """Why the From is forged, for the ticket's event; None when no trusted header says so.

    `fields` is the mail's own header section, top first, lower-case names, values as written
    (rawmail.top_header_fields).
    """
    domain = (from_domain or "").strip().strip(".").lower()
    if not domain:
        return None
    values = [value for name, value in fields if name == "authentication-results"]
    found = trusted_results(values, trusted)
    if found.header is None:
        if found.problem:
            log.info(
                "Authentication-Results of %s not readable, no DMARC verdict: %s",
                found.authserv_id,
                found.problem,
            )
        return None
    for result in found.header.results:
        if result.method != "dmarc" or result.result != "fail":
            continue
        named = result.properties.get("header.from", "").strip().strip(".").lower()
        if named and named != domain:
            continue  # a verdict about another domain (a Sender, say) is not about this From
        policy = _policy(result)
        if policy in _HARSH_POLICIES:
            return (
                f"{found.authserv_id} says dmarc=fail for {domain}, whose DMARC policy is {policy}: "
                "the From address did not send this mail"
            )
    return None


def _policy(result: AuthResult) -> str | None:
    for key in _POLICY_PROPERTIES:
        if key in result.properties:
            return result.properties[key].strip().lower()
    for comment in result.comments:
        found = _POLICY_IN_COMMENT.search(comment)
        if found:
            return found.group(1).lower()
    return None
