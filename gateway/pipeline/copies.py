"""Who a mail copies onto its ticket (SPEC §13 Copies); a pure rule, the store is not touched.

The mail that opens a ticket makes participants of the addresses in its `To` and `Cc`; a later reply
from the requester or authenticated staff, of the addresses in its `Cc` only (its `To` is ticketgate
or the person answered). Never a participant: a gateway address or a sub-address of one, a staff-side
address (`staff.addresses`, triage, on call, the security contact), the requester, an address
ticketgate never mails (null, mailer-daemon, postmaster, noreply and the like), or something that
is not one deliverable address. Who may *add* is decided by the caller: a stranger's or a
participant's own Cc adds nobody, so nobody can put themselves on someone else's ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.addresses import GatewayAddresses, bare, should_notify
from gateway.config.settings import StaffSettings
from gateway.domain import Address, ParsedMail

# One deliverable address, as a notification header takes it (gateway/notify/message.py checks the
# same shape again when it writes the Cc): no spaces, brackets, quotes, commas or controls.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"
_DELIVERABLE = re.compile(rf"{_LOCAL}@(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+")
MAX_COPIED = 50  # as many as SMTP intake accepts recipients: a mail cannot copy more people than that


def staff_side(staff: StaffSettings) -> frozenset[str]:
    """Every address on the staff side, lower case."""
    found = {address.strip().lower() for address in staff.addresses}
    for single in (staff.triage, staff.on_call, staff.security_contact):
        if single:
            found.add(single.strip().lower())
    return frozenset(found)


def why_not_copied(
    address: str, *, requester: str, ours: GatewayAddresses, staff: StaffSettings
) -> str | None:
    """Why `address` cannot be a participant, or None when it can."""
    plain = bare(address).lower()
    if len(plain) > 320 or not _DELIVERABLE.fullmatch(plain):
        return f"{address.strip()[:100]!r} is not one deliverable address"
    if ours.is_ours(plain):
        return f"{plain} is a gateway address"
    if plain in staff_side(staff):
        return f"{plain} is a staff address"
    if plain == bare(requester).lower():
        return f"{plain} is the requester"
    if not should_notify(plain, ours=ours):
        return f"{plain} is never mailed (a machine address)"
    return None


def copied(
    people: Iterable[Address], *, requester: str, ours: GatewayAddresses, staff: StaffSettings
) -> list[Address]:
    """Who of `people` becomes a participant: each address once (first name given wins), in order."""
    found: dict[str, Address] = {}
    for person in people:
        if len(found) >= MAX_COPIED:
            break
        if why_not_copied(person.address, requester=requester, ours=ours, staff=staff) is not None:
            continue
        key = bare(person.address).lower()
        if key not in found:
            found[key] = Address(key, person.name.strip())
    return list(found.values())


def copied_on_opening(
    mail: ParsedMail, *, requester: str, ours: GatewayAddresses, staff: StaffSettings
) -> list[Address]:
    """The participants a mail that opens a ticket makes: its To and Cc."""
    return copied((*mail.to, *mail.cc), requester=requester, ours=ours, staff=staff)


def copied_on_reply(
    mail: ParsedMail, *, requester: str, ours: GatewayAddresses, staff: StaffSettings
) -> list[Address]:
    """The participants a reply from the requester or staff makes: its Cc."""
    return copied(mail.cc, requester=requester, ours=ours, staff=staff)
