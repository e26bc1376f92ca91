"""`[gateway]` and `[database]`: whose mail this is, the reply-token key, where it is stored."""

from __future__ import annotations

import re

from gateway.config.reader import Table, has_problem_under
from gateway.config.settings import DEVELOPMENT_SECRET, DatabaseSettings, GatewaySettings
from gateway.config.validators import database_url_problem

MIN_SECRET_LENGTH = 16
SECRET_HINT = "a long random string that keys reply-address tokens"

DEFAULT_GATEWAY_ADDRESSES: tuple[str, ...] = ("support@*",)
DEFAULT_TICKET_PREFIX = "TG"
DEFAULT_DATABASE_URL = "sqlite:///ticketgate.db"


def read_gateway(t: Table, *, embedded: bool) -> GatewaySettings:
    addresses = t.address_list("addresses", DEFAULT_GATEWAY_ADDRESSES, wildcard=True)
    for index, address in enumerate(addresses):
        if "+" in address.partition("@")[0]:
            t.problem(
                f"addresses[{index}]",
                f"must not contain '+' ({address!r}): sub-addresses of each address are accepted anyway",
            )
    if t.has("addresses") and not addresses and not has_problem_under(t, "addresses"):
        t.problem("addresses", 'must list at least one address, such as ["support@example.com"]')

    prefix = t.text("ticket_prefix", DEFAULT_TICKET_PREFIX)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,15}", prefix):
        t.problem(
            "ticket_prefix", f"expected 1 to 16 letters and digits starting with a letter, got {prefix!r}"
        )

    if embedded:
        secret = DEVELOPMENT_SECRET
    else:
        secret = t.required_text("secret", SECRET_HINT)
        if secret == DEVELOPMENT_SECRET:
            t.problem("secret", f"is ticketgate's public development secret; use {SECRET_HINT}")
        elif secret and len(secret) < MIN_SECRET_LENGTH:
            t.problem(
                "secret",
                f"too short ({len(secret)} characters); use {SECRET_HINT}, at least "
                f"{MIN_SECRET_LENGTH} characters",
            )
    node_name = t.optional_text("node_name")
    if node_name is not None and not re.fullmatch(r"[\w.:@-]{1,200}", node_name):
        t.problem("node_name", f"expected 1 to 200 letters, digits and . _ : @ -, got {node_name!r}")
    t.finish()
    return GatewaySettings(addresses=addresses, ticket_prefix=prefix, secret=secret, node_name=node_name)


def read_database(t: Table) -> DatabaseSettings:
    url = t.text("url", DEFAULT_DATABASE_URL)
    problem = database_url_problem(url)
    if problem:
        t.problem("url", problem)
    reply_timeout = t.seconds("reply_timeout", 15.0)
    t.finish()
    return DatabaseSettings(url=url, reply_timeout=reply_timeout)
