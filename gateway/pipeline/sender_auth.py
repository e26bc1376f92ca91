"""Whether a mail's From domain is authenticated the way staff mail is (SPEC §5), for senders that are
not staff: a web form's mailer (SPEC §13). The same two checks as gateway.pipeline.staff_auth, in the
same order: the topmost Authentication-Results of a trusted server (`staff.trusted_authserv_ids`)
says dmarc=pass or an aligned dkim=pass; else a DKIM signature aligned with From verifies (dkimpy,
DNS injected in tests). A reply address proves nothing here: a form never answers one."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.mail.auth_results import raw_header_values, trusted_results
from gateway.pipeline.staff_auth import DnsFunc, authentication_results_problem, dkim_problem_for


def from_domain_problem(
    raw: bytes, *, address: str, trusted: Iterable[str], dnsfunc: DnsFunc | None = None
) -> str | None:
    """None when the From domain of `address` is authenticated; otherwise why not, for the event."""
    domain = address.strip().strip("<>").rpartition("@")[2].lower()
    results = trusted_results(raw_header_values(raw), tuple(trusted))
    results_problem = authentication_results_problem(results, from_domain=domain)
    if results_problem is None:
        return None
    dkim_problem = dkim_problem_for(raw, from_domain=domain, dnsfunc=dnsfunc)
    if dkim_problem is None:
        return None
    return f"{address} is not authenticated: {dkim_problem}, and {results_problem}"
