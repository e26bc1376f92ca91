"""Mail in and out: `[smtp]` (with its STARTTLS files), `[outbound]` and each `[[imap]]` account."""

from __future__ import annotations

import os
from typing import Any, Literal

from gateway.config.endpoints import RelayTarget, parse_listen, parse_relay
from gateway.config.reader import Table, one_of
from gateway.config.sections.imap_oauth2 import read_oauth2
from gateway.config.settings import (
    MIB,
    GatewaySettings,
    ImapAccount,
    OutboundSettings,
    SmtpSettings,
    TicketSettings,
)
from gateway.config.validators import find_category, is_host, mailbox_problem
from gateway.domain import Priority
from gateway.tls import server_tls_context

DEFAULT_LISTEN = "127.0.0.1:2525"
DEFAULT_RELAY = "dir:./outgoing"
DEFAULT_DISPLAY_NAME = "ticketgate"
DEFAULT_FROM = f"{DEFAULT_DISPLAY_NAME} <support@localhost>"


def read_smtp(t: Table) -> SmtpSettings:
    listen = t.text("listen", DEFAULT_LISTEN)
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        t.problem("listen", str(exc))
        host, port = parse_listen(DEFAULT_LISTEN)
    settings = SmtpSettings(
        host=host,
        port=port,
        lmtp=t.boolean("lmtp", False),
        max_message_size=t.integer("max_message_size", 25 * MIB),
        max_recipients=t.integer("max_recipients", 50),
        max_connections=t.integer("max_connections", 100),
        command_timeout=t.seconds("command_timeout", 300.0),
        data_timeout=t.seconds("data_timeout", 600.0),
        max_connections_per_ip=t.integer("max_connections_per_ip", 20),
        **_read_smtp_tls(t),
    )
    t.finish()
    return settings


def _read_smtp_tls(t: Table) -> dict[str, Any]:
    """`tls_certificate`, `tls_key`, `require_tls`: both files or neither, and loadable now, so
    a bad certificate stops `check-config` and startup rather than a sender's STARTTLS."""
    certificate = t.optional_text("tls_certificate")
    key = t.optional_text("tls_key")
    require_tls = t.boolean("require_tls", False)
    if (certificate is None) != (key is None):
        missing = "tls_key" if key is None else "tls_certificate"
        given = "tls_certificate" if key is None else "tls_key"
        t.problem(missing, f"required with smtp.{given}: STARTTLS needs both the certificate and its key")
    elif certificate is not None and key is not None:
        readable = True
        for name, path in (("tls_certificate", certificate), ("tls_key", key)):
            if not (os.path.isfile(path) and os.access(path, os.R_OK)):
                t.problem(name, f"cannot read {path!r}: no such file, or not readable by this user")
                readable = False
        if readable:
            try:
                server_tls_context(certificate, key)
            except ValueError as exc:
                t.problem("tls_certificate", f"{exc} (tls_certificate = {certificate!r}, tls_key = {key!r})")
    if require_tls and (certificate is None or key is None):
        t.problem(
            "require_tls", "needs smtp.tls_certificate and smtp.tls_key: without them no STARTTLS is offered"
        )
    return {"tls_certificate": certificate, "tls_key": key, "require_tls": require_tls}


def read_outbound(t: Table, gateway: GatewaySettings) -> OutboundSettings:
    relay = t.text("relay", DEFAULT_RELAY)
    target: RelayTarget | None = None
    try:
        target = parse_relay(relay)
    except ValueError as exc:
        t.problem("relay", str(exc))

    from_address = t.text("from", _default_from(gateway.addresses))
    problem = mailbox_problem(from_address)
    if problem:
        t.problem("from", problem)

    user = t.optional_text("user")
    password = t.optional_text("password")
    if t.has("user") != t.has("password"):
        missing, given = ("password", "user") if t.has("user") else ("user", "password")
        t.problem(missing, f"required when outbound.{given} is set (the relay login needs both)")
    if target is not None and target.scheme == "dir" and (t.has("user") or t.has("password")):
        t.problem("user" if t.has("user") else "password", "only used with an smtp:// or smtps:// relay")

    ack_limit = t.integer("ack_limit_per_hour", 5, minimum=0)
    t.finish()
    return OutboundSettings(
        relay=relay, from_address=from_address, user=user, password=password, ack_limit_per_hour=ack_limit
    )


def _default_from(gateway_addresses: tuple[str, ...]) -> str:
    """The first real gateway address, so acknowledgements come from where the customer wrote to."""
    for address in gateway_addresses:
        if not address.endswith("@*"):
            return f"{DEFAULT_DISPLAY_NAME} <{address}>"
    return DEFAULT_FROM


_TLS_MODES: tuple[Literal["ssl", "starttls", "none"], ...] = ("ssl", "starttls", "none")
_LOGINS = ("password", "password_command", "oauth2_token_command", "oauth2")


def read_imap(tables: list[Table], tickets: TicketSettings) -> tuple[ImapAccount, ...]:
    accounts: list[ImapAccount] = []
    names: dict[str, str] = {}
    for t in tables:
        host = t.required_text("host", 'the IMAP server, such as "imap.example.com"')
        if host and not is_host(host):
            t.problem("host", f"expected a host name or IP address, got {host!r}")
        tls_text = t.text("tls", "ssl").lower()
        tls = next((mode for mode in _TLS_MODES if mode == tls_text), None)
        if tls is None:
            t.problem("tls", f"expected one of {one_of(_TLS_MODES)}, got {tls_text!r}")
            tls = "ssl"
        port = t.integer("port", 993 if tls == "ssl" else 143)
        if port > 65535:
            t.problem("port", f"must be a number from 1 to 65535, got {port}")
        username = t.required_text("username", "the login name of the mailbox")

        logins = {login: t.optional_text(login) for login in _LOGINS if login != "oauth2"}
        oauth2 = read_oauth2(t.table("oauth2")) if t.has("oauth2") else None
        given = [login for login in _LOGINS if t.has(login)]
        if not given:
            t.problem("password", f"required — give exactly one of {one_of(_LOGINS)}")
        elif len(given) > 1:
            t.problem(given[1], f"give exactly one of {one_of(_LOGINS)}, got {' and '.join(given)}")

        name = t.text("name", username)
        if name and name.lower() in names:
            t.problem(
                "name",
                f"{name!r} is already the name of {names[name.lower()]}: each account needs "
                "its own name (it defaults to the username)",
            )
        elif name:
            names[name.lower()] = t.path

        folder = t.text("folder", "INBOX")
        processed = t.text("processed_folder", "Processed")
        quarantine = t.text("quarantine_folder", "Quarantine")
        for key, other in (("processed_folder", processed), ("quarantine_folder", quarantine)):
            if other == folder:
                t.problem(key, f"must differ from folder ({folder!r}): mail moved there would be read again")

        category: str | None = None
        category_text = t.optional_text("category")
        if category_text is not None:
            category = find_category(category_text, tickets.categories)
            if category is None:
                t.problem(
                    "category",
                    f"{category_text!r} is not one of tickets.categories ({one_of(tickets.categories)})",
                )
        accounts.append(
            ImapAccount(
                name=name,
                host=host,
                port=port,
                tls=tls,
                username=username,
                password=logins["password"],
                password_command=logins["password_command"],
                oauth2_token_command=logins["oauth2_token_command"],
                folder=folder,
                processed_folder=processed,
                quarantine_folder=quarantine,
                category=category,
                priority=t.optional_choice("priority", Priority),
                poll_interval=t.seconds("poll_interval", 60.0),
                oauth2=oauth2,
            )
        )
        t.finish()
    return tuple(accounts)
