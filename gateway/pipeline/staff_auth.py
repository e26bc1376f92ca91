"""Who is staff (SPEC §5): a configured staff address that is also authenticated, and if not, why not.

A From header is trivially forged, so the address alone grants nothing. It counts as staff when:
1. the mail was sent to a staff reply address (a token minted for staff, held only by staff mailboxes);
2. or it carries a DKIM signature that verifies (dkimpy) for the From domain, or a parent domain of it
   (relaxed alignment), without an `l=` body length (which would let text be appended after signing);
3. or an `Authentication-Results` header from a configured trusted server (`staff.trusted_authserv_ids`)
   says `dmarc=pass` (for this From domain when it names one) or `dkim=pass` aligned with From.
   The trusted server must remove such headers claiming its name from incoming mail (RFC 8601 §5),
   as OpenDMARC, Rspamd and Exchange do; otherwise anyone could write one.
DKIM needs DNS: `dnsfunc` (dkimpy's `name, timeout=... -> TXT bytes`) is injected so tests never use the
network; None means dkimpy's resolver. DKIM is tried last, after the checks that need no lookup.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import dkim

from gateway.config import StaffSettings
from gateway.domain import ParsedMail
from gateway.reply_address import AUDIENCE_STAFF

log = logging.getLogger(__name__)

DnsFunc = Callable[..., bytes | None]


class StaffMethod(StrEnum):
    REPLY_ADDRESS = "reply-address"
    DKIM = "dkim"
    AUTHENTICATION_RESULTS = "authentication-results"


@dataclass(frozen=True)
class StaffAuth:
    """Whether the sender is a staff address, how it was authenticated, or why it was not."""

    staff_address: bool  # From is a configured staff address
    method: StaffMethod | None = None  # None: not authenticated (or not a staff address)
    reason: str = ""  # for a staff address that is not authenticated: why, for the ticket's events

    @property
    def is_staff(self) -> bool:
        return self.staff_address and self.method is not None


NOT_STAFF = StaffAuth(staff_address=False)


def authenticate_staff(
    mail: ParsedMail,
    raw: bytes,
    *,
    sender: str,
    staff: StaffSettings,
    token_audience: str | None,
    dnsfunc: DnsFunc | None = None,
) -> StaffAuth:
    """Whether `sender` (the From address) is authenticated staff, checked in the order above."""
    if not staff.is_staff(sender):
        return NOT_STAFF
    if token_audience == AUDIENCE_STAFF:
        return StaffAuth(True, StaffMethod.REPLY_ADDRESS)
    domain = _domain_of(sender)
    if authentication_results_pass(
        mail.headers.get("authentication-results", ()), from_domain=domain, trusted=staff.trusted_authserv_ids
    ):
        return StaffAuth(True, StaffMethod.AUTHENTICATION_RESULTS)
    dkim_problem = dkim_problem_for(raw, from_domain=domain, dnsfunc=dnsfunc)
    if dkim_problem is None:
        return StaffAuth(True, StaffMethod.DKIM)
    reason = (
        f"{sender} is a staff address but the mail is not authenticated: not sent to a staff reply "
        f"address, {dkim_problem}, and no passing Authentication-Results from a trusted server"
    )
    return StaffAuth(True, None, reason)


# --- DKIM -----------------------------------------------------------------------------------------


def dkim_problem_for(raw: bytes, *, from_domain: str, dnsfunc: DnsFunc | None = None) -> str | None:
    """None when a DKIM signature aligned with `from_domain` verifies; otherwise what was wrong."""
    try:
        checker = dkim.DKIM(raw, logger=log)
    except dkim.DKIMException as exc:
        return f"no readable DKIM signature ({exc})"
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    if count == 0:
        return "no DKIM signature"
    problems: list[str] = []
    for index in range(count):
        problem = _one_signature(checker, index, from_domain, dnsfunc)
        if problem is None:
            return None
        problems.append(problem)
    return "; ".join(problems)


def _one_signature(checker: dkim.DKIM, index: int, from_domain: str, dnsfunc: DnsFunc | None) -> str | None:
    try:
        # dkimpy's own resolver is its default argument; pass ours only when one is injected.
        passed = checker.verify(idx=index) if dnsfunc is None else checker.verify(idx=index, dnsfunc=dnsfunc)
    except dkim.DKIMException as exc:
        return f"DKIM signature {index + 1} unusable ({exc})"
    signer = (checker.domain or b"").decode("ascii", "replace").lower()
    if not passed:
        return f"DKIM signature of {signer or '?'} does not verify"
    if not aligned(signer, from_domain):
        return f"DKIM signature of {signer} is not for the From domain {from_domain}"
    if b"l" in checker.signature_fields:
        return f"DKIM signature of {signer} covers only part of the body (l=)"
    return None


def aligned(signer: str, from_domain: str) -> bool:
    """Relaxed alignment: the signer is the From domain or a parent of it (not a bare top-level name)."""
    signer = signer.strip().strip(".").lower()
    from_domain = from_domain.strip().strip(".").lower()
    if not signer or not from_domain:
        return False
    if signer == from_domain:
        return True
    return "." in signer and from_domain.endswith("." + signer)


# --- Authentication-Results (RFC 8601) ------------------------------------------------------------

_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class AuthResult:
    method: str  # "dkim", "dmarc", "spf" ...
    result: str  # "pass", "fail" ...
    properties: dict[str, str]  # "header.d" -> "example.com"


def parse_authentication_results(value: str) -> tuple[str, tuple[AuthResult, ...]]:
    """(authserv-id, results) of one Authentication-Results header value."""
    text = value.replace("\r", " ").replace("\n", " ")
    while True:  # comments may nest: remove the innermost until none are left
        stripped = _COMMENT.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    head, *parts = text.split(";")
    head_words = head.split()
    authserv_id = head_words[0].lower() if head_words else ""
    results: list[AuthResult] = []
    for part in parts:
        words = part.split()
        if not words or "=" not in words[0]:
            continue
        method, _, result = words[0].partition("=")
        properties: dict[str, str] = {}
        for word in words[1:]:
            key, sep, prop = word.partition("=")
            if sep:
                properties[key.lower()] = prop.strip('"').lower()
        results.append(AuthResult(method.split("/")[0].lower(), result.lower(), properties))
    return authserv_id, tuple(results)


def authentication_results_pass(values: Iterable[str], *, from_domain: str, trusted: Iterable[str]) -> bool:
    """Whether a trusted server vouched for the From domain (dmarc=pass, or aligned dkim=pass)."""
    trusted_ids = {name.lower() for name in trusted}
    if not trusted_ids:
        return False
    for value in values:
        authserv_id, results = parse_authentication_results(value)
        if authserv_id not in trusted_ids:
            continue
        for result in results:
            if result.result != "pass":
                continue
            if result.method == "dmarc":
                named = result.properties.get("header.from")
                if named is None or named == from_domain.lower():
                    return True
            if result.method == "dkim":
                props = result.properties
                signer = props.get("header.d") or _domain_of(props.get("header.i", ""))
                if signer and aligned(signer, from_domain):
                    return True
    return False


def _domain_of(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[2].lower()
