"""Small checks on single values: addresses, domains, hosts, database URLs, names of choices.

Each `*_problem` function returns why a value is wrong (the text a user reads after the key), or
None; none of them knows which key it checks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from email.utils import getaddresses
from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)

_LOCAL_PART = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)(?:[^\W_]|-){1,63}(?<!-)")


def is_domain(domain: str) -> bool:
    return len(domain) <= 253 and all(_LABEL.fullmatch(label) for label in domain.split("."))


def is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return is_domain(host)
    return True


def address_problem(value: str, *, wildcard_domain: bool = False) -> str | None:
    """Why `value` is not a bare address (`local@domain`), or None when it is one."""
    example = "such as name@example.com"
    if any(char.isspace() or char in '<>,;"' for char in value):
        return f"expected a bare address {example}, got {value!r}"
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        return f"expected an address {example}, got {value!r}"
    if not _LOCAL_PART.fullmatch(local):
        return f"{local!r} is not a valid part before the '@' (in {value!r})"
    if domain == "*" and wildcard_domain:
        return None
    if not is_domain(domain):
        return f"{domain!r} is not a valid domain (in {value!r})"
    return None


def mailbox_problem(value: str) -> str | None:
    """Why `value` is not one address with an optional display name, or None when it is."""
    expected = f'one address with an optional name, such as "Support <support@example.com>", got {value!r}'
    if any(char in value for char in "\r\n"):
        return f"expected {expected}"
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        return f"expected {expected}"
    return address_problem(pairs[0][1])


def customer_pattern_problem(pattern: str) -> str | None:
    if "@" in pattern and not pattern.startswith("@"):
        return address_problem(pattern)
    domain = pattern.removeprefix("@")
    if not is_domain(domain) or "." not in domain:
        return f'expected an address "ana@acme.example" or a domain "acme.example", got {pattern!r}'
    return None


def database_url_problem(url: str) -> str | None:
    # The URL may hold a password, so a problem shows its scheme only, never the whole URL.
    expected = (
        'expected a database URL such as "sqlite:///ticketgate.db" or "postgresql+psycopg://USER@HOST/DB"'
    )
    if "://" not in url:
        return f"{expected}, got a value without '://'"
    scheme = url.partition("://")[0]
    if not re.fullmatch(r"(sqlite|postgresql)(\+\w+)?", scheme.lower()):
        return f"{expected}, got a URL of scheme {scheme!r}"
    return None


def find_category(name: str, categories: Iterable[str]) -> str | None:
    """The configured spelling of a category name given in any case."""
    wanted = name.strip().casefold()
    return next((category for category in categories if category.casefold() == wanted), None)


def enum_member(enum: type[E], text: str) -> E | None:
    """The member whose value (or name) matches, case-insensitively: "waiting on user", "in-progress"."""
    wanted = normalise_name(text)
    for member in enum:
        if wanted in (normalise_name(member.value), normalise_name(member.name)):
            return member
    return None


def normalise_name(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().casefold())


def bare_address(address: str) -> str:
    return address.strip().strip("<>").strip().lower()
