"""Who is who: `[staff]` (never one of the gateway's own addresses) and the `[[customers]]` directory."""

from __future__ import annotations

import re

from gateway.addresses import GatewayAddresses
from gateway.config.reader import Table, one_of
from gateway.config.settings import Customer, CustomerDirectory, GatewaySettings, StaffSettings
from gateway.config.validators import customer_pattern_problem
from gateway.domain import Tier


def read_staff(t: Table, gateway: GatewaySettings) -> StaffSettings:
    addresses = t.address_list("addresses", ())
    triage = t.address("triage")
    security_contact = t.address("security_contact")
    on_call = t.address("on_call")
    authserv_ids = t.text_list("trusted_authserv_ids", ())
    for index, authserv_id in enumerate(authserv_ids):
        if not re.fullmatch(r"[^\s;()\"]+", authserv_id):
            t.problem(
                f"trusted_authserv_ids[{index}]",
                f"expected a server name as it appears in Authentication-Results, such as "
                f'"mx.example.com", got {authserv_id!r}',
            )
    try:
        ours = GatewayAddresses(gateway.addresses)
    except ValueError:  # already reported under gateway.addresses
        ours = GatewayAddresses(())
    # Mail to staff must never come back into ticketgate: that is a mail loop.
    loop = "is one of the gateway's own addresses (gateway.addresses): mail to it would loop"
    for index, address in enumerate(addresses):
        if ours.is_ours(address):
            t.problem(f"addresses[{index}]", f"{address!r} {loop}")
    for name, single in (("triage", triage), ("security_contact", security_contact), ("on_call", on_call)):
        if single is not None and ours.is_ours(single):
            t.problem(name, f"{single!r} {loop}")
    t.finish()
    return StaffSettings(
        addresses=addresses,
        triage=triage,
        security_contact=security_contact,
        on_call=on_call,
        trusted_authserv_ids=tuple(dict.fromkeys(authserv_ids)),
    )


def read_customers(tables: list[Table]) -> CustomerDirectory:
    entries: list[Customer] = []
    seen: dict[str, str] = {}
    for t in tables:
        pattern = t.required_text("match", 'an address "ana@acme.example" or a domain "acme.example"')
        normalised = pattern.lower().removeprefix("@")
        if pattern:
            problem = customer_pattern_problem(pattern)
            if problem:
                t.problem("match", problem)
            elif normalised in seen:
                t.problem("match", f"{pattern!r} is already matched by {seen[normalised]}")
            else:
                seen[normalised] = t.path
        if t.has("tier"):
            tier = t.choice("tier", Tier, Tier.FREE)
        else:
            t.required_text("tier", one_of(m.value for m in Tier))
            tier = Tier.FREE
        entries.append(
            Customer(
                pattern=normalised,
                tier=tier,
                account_manager=t.address("account_manager"),
                name=t.optional_text("name"),
            )
        )
        t.finish()
    return CustomerDirectory(entries=tuple(entries))
