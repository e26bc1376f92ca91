"""`ticketgate init [PATH] [--domain D] [--staff ADDRESS ...]` (SPEC §14 "A first config"): a
commented ticketgate.toml that `check-config` passes and `serve` runs on, with a fresh secret; and
the one line a command says on stderr when it finds no config file at all.

The file is checked by the config loader before it is written, and written with O_EXCL: an
existing file is never overwritten, not even by a race between two `init`s."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EX_USAGE = 64
EX_CANTCREAT = 73  # sysexits: the output file cannot be created (it exists, or its folder does not)
DEFAULT_DOMAIN = "example.com"
# Commands that need no config, or say themselves that they run without one (serve logs it).
_QUIET_COMMANDS = frozenset({"init", "serve"})


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    init = commands.add_parser("init", parents=[common], help="write a first, commented ticketgate.toml")
    init.add_argument("path", nargs="?", default="ticketgate.toml", help="where (default: ./ticketgate.toml)")
    init.add_argument(
        "--domain",
        default=None,
        help=f"the support domain: mail to support@DOMAIN (default: {DEFAULT_DOMAIN})",
    )
    init.add_argument(
        "--staff", nargs="+", action="extend", default=[], metavar="ADDRESS", help="staff addresses"
    )
    init.add_argument("--prefix", default="TG", help="the ticket prefix: TG-1, TG-2, … (default: TG)")
    init.set_defaults(handler=_init)


def say_when_no_config(args: argparse.Namespace) -> None:
    """One line on stderr, when the command will run on the embedded defaults (no config file)."""
    from gateway.config import DATABASE_URL_ENV, ConfigError, embedded_defaults, resolve_config_path

    if args.command in _QUIET_COMMANDS or resolve_config_path(args.config, os.environ) is not None:
        return
    try:
        settings = embedded_defaults(os.environ)
    except ConfigError:  # a bad $TICKETGATE_DATABASE_URL: the command itself says so
        return
    # The URL may hold a password: an override is named, not shown.
    database = (
        f"${DATABASE_URL_ENV}" if os.environ.get(DATABASE_URL_ENV, "").strip() else settings.database.url
    )
    print(
        "ticketgate: no config file (--config, $TICKETGATE_CONFIG or ./ticketgate.toml): running on the "
        f"embedded defaults: database {database}, SMTP on {settings.smtp.host}:{settings.smtp.port}, "
        f"outgoing mail to {settings.outbound.relay}, mail for {', '.join(settings.gateway.addresses)} "
        "(`ticketgate init` writes a config)",
        file=sys.stderr,
    )


def _init(args: argparse.Namespace) -> int:
    import secrets
    import tomllib

    from gateway.addresses import GatewayAddresses
    from gateway.config import ConfigErrors, settings_from_mapping
    from gateway.config.validators import address_problem, is_domain

    domain = (args.domain or DEFAULT_DOMAIN).strip().lower().rstrip(".")
    if not is_domain(domain) or "." not in domain:
        print(f"ticketgate: --domain {args.domain!r} is not a domain such as example.com", file=sys.stderr)
        return EX_USAGE
    support = f"support@{domain}"
    staff: list[str] = []
    for address in args.staff:
        problem = address_problem(address.strip())
        if problem:
            print(f"ticketgate: --staff: {problem}", file=sys.stderr)
            return EX_USAGE
        if GatewayAddresses((support,)).is_ours(address):
            print(f"ticketgate: --staff {address!r} is the support address itself: mail to it would loop",
                  file=sys.stderr)  # fmt: skip
            return EX_USAGE
        if address.strip().lower() not in (s.lower() for s in staff):
            staff.append(address.strip())
    path = Path(args.path)
    text = config_text(
        domain=domain,
        support=support,
        staff=staff,
        prefix=args.prefix,
        secret=secrets.token_urlsafe(32),
        folder=_folder_for(path),
    )
    try:  # never write a file the loader would refuse
        settings_from_mapping(tomllib.loads(text), source=path, environ={})
    except ConfigErrors as errors:
        print(f"ticketgate: {str(errors).splitlines()[0]}", file=sys.stderr)
        return EX_USAGE
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        print(f"ticketgate: {path} already exists; init never overwrites a file (name another PATH)",
              file=sys.stderr)  # fmt: skip
        return EX_CANTCREAT
    except OSError as exc:
        print(f"ticketgate: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EX_CANTCREAT
    os.chmod(path, 0o600)  # it holds the secret
    who = ", ".join(staff) or "none yet (add [staff] addresses)"
    print(f"wrote {path}: mail for {support}, staff {who}, SQLite, notifications written to a folder")
    where = "" if _folder_for(path) is None else f" --config {path}"
    print(f"next: ticketgate check-config{where}, then ticketgate serve{where}")
    return 0


def _folder_for(path: Path) -> Path | None:
    """None when the file is in the working folder (paths in it are written relative, `./…`); else
    its folder, absolute, since relative paths in the config are read from the working folder."""
    folder = path.absolute().parent
    return None if folder == Path.cwd().absolute() else folder


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_text(
    *, domain: str, support: str, staff: list[str], prefix: str, secret: str, folder: Path | None
) -> str:
    """The commented config `init` writes."""

    def place(name: str) -> str:
        return f"./{name}" if folder is None else str(folder / name)

    staff_list = ", ".join(_quoted(s) for s in staff)
    triage = (
        f"triage = {_quoted(staff[0])}  # who hears of each new ticket (staff_new_ticket)"
        if staff
        else f'# triage = "triage@{domain}"  # who hears of each new ticket (staff_new_ticket)'
    )
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""\
# ticketgate configuration, written by `ticketgate init` on {written}.
# Check it with `ticketgate check-config`; every key is described in the documentation
# (docs/admin/). Relative paths are read from the folder ticketgate runs in.

[gateway]
# The addresses customers write to; sub-addresses (support+billing@…) are accepted too.
addresses = [{_quoted(support)}]
# Tickets are called {prefix}-1, {prefix}-2, …
ticket_prefix = {_quoted(prefix)}
# Keys the reply addresses of notifications (support+{prefix}-42.<token>@{domain}). Keep it
# secret; changing it makes the reply addresses of mail already sent unknown.
secret = {_quoted(secret)}

[database]
# SQLite in one file. For PostgreSQL (production, several nodes):
# url = "postgresql+psycopg://ticketgate@db.{domain}/ticketgate"
url = {_quoted("sqlite:///" + place("ticketgate.db").removeprefix("./"))}

[storage]
# Screenshots and attachments (with PostgreSQL: storage.blobs = "database").
blob_dir = {_quoted(place("blobs"))}

[smtp]
# Where `ticketgate serve` takes mail: point your MTA here (lmtp = true to speak LMTP).
listen = "127.0.0.1:2525"

[outbound]
# Notifications are written as .eml files to this folder until you name a relay,
# e.g. relay = "smtp://smtp.{domain}:587" with user = "…" and password = "…".
relay = {_quoted("dir:" + place("outgoing"))}
from = {_quoted(f"Support <{support}>")}

[staff]
# Staff answer and triage by replying to notifications; their commands (#urgent, #assign me …)
# count only when authenticated: a staff reply address, DKIM, or trusted_authserv_ids below.
addresses = [{staff_list}]
{triage}
# trusted_authserv_ids = ["mx.{domain}"]  # servers whose Authentication-Results count

# Routing rules, applied in order to mail that opens a ticket (docs/admin/rules.md):
# [[rules]]
# name = "invoices"
# subject = "invoice|refund"
# category = "Billing & Payments"
"""
