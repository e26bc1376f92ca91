"""Who is staff (SPEC §5): a configured staff address that is also authenticated, and if not, why not.

A From header is trivially forged, so the address alone grants nothing. It counts as staff when:
1. the mail was sent to a staff reply address (a token minted for staff, held only by staff mailboxes);
2. or it carries a DKIM signature that verifies (dkimpy) for the From domain, or a parent domain of it
   (relaxed alignment), lists From in `h=` (dkimpy verifies signatures that do not), and has no `l=`
   shorter than the body, which would leave text appended after signing unsigned (SPEC §11);
3. or the topmost `Authentication-Results` header from a configured trusted server
   (`staff.trusted_authserv_ids`) says `dmarc=pass` (for this From domain when it names one) or
   `dkim=pass` aligned with From; read per RFC 8601 (gateway.mail.auth_results), so a pass inside
   a quoted string or a comment is none. Lower headers claiming a trusted name came with the mail
   from anyone and are ignored. The trusted server should also remove such headers claiming its name
   from incoming mail (RFC 8601 §5), as OpenDMARC, Rspamd and Exchange do.
DKIM needs DNS: `dnsfunc` (dkimpy's `name, timeout=... -> TXT bytes`) is injected so tests never use the
network; None means dkimpy's resolver. DKIM is tried last, after the checks that need no lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import dkim
from dkim.canonicalization import CanonicalizationPolicy, InvalidCanonicalizationPolicyError

from gateway.config import StaffSettings
from gateway.domain import ParsedMail
from gateway.mail.auth_results import (
    AuthResult,
    AuthResultsSyntaxError,
    TrustedResults,
    authserv_id_of,
    parse_header,
    raw_header_values,
    trusted_results,
)
from gateway.reply_address import AUDIENCE_STAFF

log = logging.getLogger(__name__)

DnsFunc = Callable[..., bytes | None]


class StaffMethod(StrEnum):
    REPLY_ADDRESS = "reply-address"
    DKIM = "dkim"
    AUTHENTICATION_RESULTS = "authentication-results"
    COMMAND_LINE = "command-line"  # `tickets update --as`: whoever may run the CLI on the server


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
    # From the raw bytes: the parsed headers are RFC 2047-decoded, which can forge quotes.
    trusted = trusted_results(raw_header_values(raw), staff.trusted_authserv_ids)
    results_problem = authentication_results_problem(trusted, from_domain=domain)
    if results_problem is None:
        return StaffAuth(True, StaffMethod.AUTHENTICATION_RESULTS)
    dkim_problem = dkim_problem_for(raw, from_domain=domain, dnsfunc=dnsfunc)
    if dkim_problem is None:
        return StaffAuth(True, StaffMethod.DKIM)
    reason = (
        f"{sender} is a staff address but the mail is not authenticated: not sent to a staff reply "
        f"address, {dkim_problem}, and {results_problem}"
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
    # dkimpy verifies whatever h= lists: a signature that does not cover From vouches for no sender.
    if b"from" not in checker.include_headers:
        return f"DKIM signature of {signer} does not cover the From header (h=)"
    short = _signed_length_short_of_body(checker)
    if short:
        return f"DKIM signature of {signer} covers only part of the body (l=): {short}"
    return None


def _signed_length_short_of_body(checker: dkim.DKIM) -> str:
    """Why an `l=` leaves part of the body unsigned (text appended after signing), or "" if it does not.

    dkimpy hashes only the first l= bytes of the canonical body and says nothing of the rest, so the
    canonical body is measured here the same way.
    """
    fields = checker.signature_fields
    if b"l" not in fields:
        return ""
    try:
        signed = int(fields[b"l"])
        policy = CanonicalizationPolicy.from_c_value(fields.get(b"c", b"simple/simple"))
    except (ValueError, InvalidCanonicalizationPolicyError):
        return "unreadable l= or c="
    body = len(policy.canonicalize_body(checker.body))
    return f"{signed} of {body} bytes signed" if signed < body else ""


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


def parse_authentication_results(value: str) -> tuple[str, tuple[AuthResult, ...]]:
    """(authserv-id, results) of one Authentication-Results value; no results when it is unreadable."""
    try:
        header = parse_header(value)
    except AuthResultsSyntaxError:
        return authserv_id_of(value) or "", ()
    return header.authserv_id, header.results


def authentication_results_problem(trusted: TrustedResults, *, from_domain: str) -> str | None:
    """None when the topmost trusted header vouches for the From domain (dmarc=pass, or an aligned
    dkim=pass); otherwise what it said instead, for the event."""
    ignored = ""
    if trusted.ignored:
        names = ", ".join(sorted(set(trusted.ignored)))
        ignored = (
            f" ({len(trusted.ignored)} lower Authentication-Results header(s) claiming {names} ignored: "
            f"only the topmost one from a trusted server counts)"
        )
    if trusted.authserv_id is None:
        return "no Authentication-Results from a trusted server"
    if trusted.header is None:
        return (
            f"the Authentication-Results of {trusted.authserv_id} is unreadable ({trusted.problem}), "
            f"so it vouches for nothing{ignored}"
        )
    for result in trusted.header.results:
        if _vouches(result, from_domain):
            return None
    said = ", ".join(f"{r.method}={r.result}"[:60] for r in trusted.header.results[:8]) or "nothing"
    return (
        f"the Authentication-Results of {trusted.authserv_id} says {said}, which does not vouch for "
        f"{from_domain} (no dmarc=pass for it, no aligned dkim=pass){ignored}"
    )


def _vouches(result: AuthResult, from_domain: str) -> bool:
    if result.result != "pass":
        return False
    if result.method == "dmarc":
        named = result.properties.get("header.from")
        return named is None or named == from_domain.lower()
    if result.method == "dkim":
        props = result.properties
        signer = props.get("header.d") or _domain_of(props.get("header.i", ""))
        return bool(signer) and aligned(signer, from_domain)
    return False


def authentication_results_pass(values: Iterable[str], *, from_domain: str, trusted: Iterable[str]) -> bool:
    """Whether the topmost trusted header (values topmost first) vouches for the From domain."""
    found = trusted_results(tuple(values), trusted)
    return authentication_results_problem(found, from_domain=from_domain) is None


def _domain_of(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[2].lower()
