"""TOML configuration -> frozen, validated `Settings`; every problem names its dotted key.

Which file: `load_settings(path)` takes an explicit path, else `$TICKETGATE_CONFIG`, else
`./ticketgate.toml` when it exists, else the embedded defaults (`Settings.source is None`).
`$TICKETGATE_DATABASE_URL` overrides `database.url` in every case.

Errors: reading never stops at the first problem. `load_settings`, `settings_from_mapping` and
`embedded_defaults` raise one `ConfigErrors` (a subclass of `ConfigError`) whose `errors` tuple holds
every problem found, each a `ConfigError(key, problem)` such as `smtp.listen` or `imap[0].tls`.
`validate(path)` resolves the file the same way and returns that list (empty when all is well), so
`ticketgate check-config` can print every problem at once.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from email.utils import getaddresses
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.addresses import GatewayAddresses, split_address
from gateway.domain import (
    DEFAULT_CATEGORIES,
    DEFAULT_CATEGORY,
    DEFAULT_VOCABULARY,
    Address,
    Priority,
    Status,
    TagMeaning,
    TagVocabulary,
    Tier,
)
from gateway.errors import ConfigError
from gateway.intake.tls import server_tls_context
from gateway.response_targets import ResponseTargets

CONFIG_ENV = "TICKETGATE_CONFIG"
DATABASE_URL_ENV = "TICKETGATE_DATABASE_URL"
DEFAULT_CONFIG_FILE = "ticketgate.toml"

# Used only when there is no config file at all; `serve` warns while it is in use.
DEVELOPMENT_SECRET = "ticketgate-insecure-development-secret-do-not-use-in-production"
MIN_SECRET_LENGTH = 16
SECRET_HINT = "a long random string that keys reply-address tokens"

DEFAULT_GATEWAY_ADDRESSES: tuple[str, ...] = ("support@*",)
DEFAULT_TICKET_PREFIX = "TG"
DEFAULT_DATABASE_URL = "sqlite:///ticketgate.db"
DEFAULT_LISTEN = "127.0.0.1:2525"
DEFAULT_RELAY = "dir:./outgoing"
DEFAULT_DISPLAY_NAME = "ticketgate"
DEFAULT_FROM = f"{DEFAULT_DISPLAY_NAME} <support@localhost>"
MIB = 1024 * 1024
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but the colon


# --------------------------------------------------------------------------------------------
# The settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewaySettings:
    """The addresses ticketgate answers for, the ticket prefix, and the reply-token key."""

    addresses: tuple[str, ...]
    ticket_prefix: str
    secret: str = field(repr=False)
    node_name: str | None = None  # this serve's name in the `nodes` table (absent: the host name)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = field(repr=False)  # may carry a password


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP (or LMTP) listener and its limits."""

    host: str  # IPv6 without brackets
    port: int
    lmtp: bool
    max_message_size: int  # bytes
    max_recipients: int
    max_connections: int
    command_timeout: float  # seconds
    data_timeout: float  # seconds
    max_connections_per_ip: int = 20  # one client address may hold this many at once
    tls_certificate: str | None = None  # PEM; with tls_key, STARTTLS is offered (SPEC §11)
    tls_key: str | None = field(default=None, repr=False)
    require_tls: bool = False  # MAIL before STARTTLS gets 530 5.7.0


@dataclass(frozen=True)
class RelayTarget:
    """`outbound.relay` taken apart: a folder to write mails into, or an SMTP server."""

    scheme: Literal["dir", "smtp", "smtps"]
    path: str | None = None  # for "dir"
    host: str | None = None  # for "smtp" / "smtps"
    port: int | None = None


@dataclass(frozen=True)
class OutboundSettings:
    """Where notifications go and who they come from."""

    relay: str
    from_address: str  # as configured, e.g. "SmilePass Support <support@smilepass.example>"
    user: str | None
    password: str | None = field(repr=False)
    ack_limit_per_hour: int

    @property
    def relay_target(self) -> RelayTarget:
        return parse_relay(self.relay)

    @property
    def sender(self) -> Address:
        """`from_address` as an Address (bare address and display name)."""
        ((name, address),) = getaddresses([self.from_address])
        return Address(address=address, name=name)


@dataclass(frozen=True)
class StaffSettings:
    addresses: tuple[str, ...]
    triage: str | None
    security_contact: str | None
    trusted_authserv_ids: tuple[str, ...]  # Authentication-Results servers whose verdict we trust
    on_call: str | None = None  # told at once of a new Urgent Billing/Security ticket (absent: triage)

    def is_staff(self, address: str) -> bool:
        wanted = _bare(address)
        return any(wanted == staff.lower() for staff in self.addresses)


@dataclass(frozen=True)
class TicketSettings:
    categories: tuple[str, ...]
    default_category: str
    default_priority: Priority
    vocabulary: TagVocabulary
    auto_close_days: int
    staff_reply_status: Status


@dataclass(frozen=True)
class Customer:
    """One customer directory entry: an address or a domain (lower case, no leading `@`)."""

    pattern: str
    tier: Tier
    account_manager: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CustomerDirectory:
    """Who our customers are: looked up by exact address first, then by domain and parent domains."""

    entries: tuple[Customer, ...] = ()
    _index: Mapping[str, Customer] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The first entry for a pattern wins; the loader refuses duplicates anyway.
        index: dict[str, Customer] = {}
        for entry in self.entries:
            index.setdefault(entry.pattern.lower().removeprefix("@"), entry)
        object.__setattr__(self, "_index", index)

    def lookup(self, address: str) -> Customer | None:
        bare = _bare(address)
        parts = split_address(bare)
        if parts is None:
            return None
        exact = self._index.get(bare)
        if exact is not None:
            return exact
        labels = parts[1].split(".")
        for start in range(len(labels)):  # mail.acme.example, then acme.example, then example
            found = self._index.get(".".join(labels[start:]))
            if found is not None:
                return found
        return None

    def tier_of(self, address: str) -> Tier:
        """The tier of a sender: Free unless the directory says otherwise."""
        customer = self.lookup(address)
        return customer.tier if customer is not None else Tier.FREE


@dataclass(frozen=True)
class LimitSettings:
    max_attachments: int
    max_image_bytes: int
    max_image_pixels: int
    max_attachment_bytes: int
    # Checked before a mail is parsed; over any of them it is quarantined whole (SPEC §11).
    max_header_bytes: int = 262144
    max_mime_parts: int = 500
    max_mime_depth: int = 20
    # New tickets one sender may open in an hour; more are stored as `flood` (SPEC §11). 0: no limit.
    new_tickets_per_sender_per_hour: int = 30


DEFAULT_SPAM_HEADERS: tuple[tuple[str, str], ...] = (("x-spam-flag", "yes"), ("x-spam", "yes"))


@dataclass(frozen=True)
class SecuritySettings:
    """Verdicts of the deployment's own filters that ticketgate acts on (SPEC §11)."""

    # (header name, value), both lower case: a spam verdict when the mail's own header section has it.
    spam_headers: tuple[tuple[str, str], ...] = DEFAULT_SPAM_HEADERS


class BlobStoreKind(StrEnum):
    DATABASE = "database"
    DIR = "dir"


@dataclass(frozen=True)
class StorageSettings:
    blob_dir: str  # relative paths are relative to the working folder
    # Where screenshot and attachment bytes go: the database (default with PostgreSQL, unless
    # `blob_dir` is set) or the folder `blob_dir` (default with SQLite).
    blobs: BlobStoreKind = BlobStoreKind.DIR


@dataclass(frozen=True)
class ImapAccount:
    """One IMAP mailbox to take mail from, with the defaults its tickets get."""

    name: str
    host: str
    port: int
    tls: Literal["ssl", "starttls", "none"]
    username: str
    password: str | None = field(repr=False)
    password_command: str | None
    oauth2_token_command: str | None
    folder: str
    processed_folder: str
    quarantine_folder: str
    category: str | None
    priority: Priority | None
    poll_interval: float  # seconds between checks when the server has no IDLE


@dataclass(frozen=True)
class ProcessingSettings:
    workers: int  # processor threads in each worker process (in `serve` itself when processes = 0)
    max_attempts: int
    retry_base_seconds: float
    processes: int = 1  # worker processes of `serve`; 0 runs the processor threads in `serve` itself


@dataclass(frozen=True)
class NotificationSettings:
    """Templates and the outbox sender's retry policy (SPEC §7)."""

    templates_dir: str | None = None  # a deployment's own templates, tried before the built-in ones
    max_attempts: int = 10  # delivery tries before a notification is dead
    retry_base_seconds: float = 60.0  # first back-off; later ones double, capped at retry_max_seconds
    retry_max_seconds: float = 3600.0
    deadline_hours: float = 48.0  # a notification still unsent this long after it was queued is dead
    max_attached_bytes: int = 10 * 1024 * 1024  # originals attached to one staff notification (SPEC §12)


@dataclass(frozen=True)
class ViewSettings:
    """`[views]` (SPEC §12): a customer's tickets by mail and the staff digest."""

    my_tickets_word: str = "tickets"  # support+tickets@… asks for the sender's own tickets
    my_tickets_per_hour: int = 3  # replies to one address per hour; more are stored, not answered
    digest_at: time | None = None  # local time of the daily digest to triage; None is off
    timezone: str = "UTC"  # IANA name the digest time is read in


@dataclass(frozen=True)
class MetricsSettings:
    """`[metrics]`: where `serve` answers /metrics, /healthz and /readyz; None (absent) is off."""

    listen: tuple[str, int] | None = None


@dataclass(frozen=True)
class LoggingSettings:
    """`[logging]`: "text" (readable lines) or "json" (one object per line, for log collectors)."""

    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, validated; `source` is the file read, None for the embedded defaults."""

    gateway: GatewaySettings
    database: DatabaseSettings
    smtp: SmtpSettings
    outbound: OutboundSettings
    staff: StaffSettings
    tickets: TicketSettings
    customers: CustomerDirectory
    limits: LimitSettings
    storage: StorageSettings
    processing: ProcessingSettings
    imap: tuple[ImapAccount, ...]
    source: Path | None = None
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    response_targets: ResponseTargets = field(default_factory=ResponseTargets)
    views: ViewSettings = field(default_factory=ViewSettings)

    def is_staff(self, address: str) -> bool:
        """Whether `address` is a configured staff address (case-insensitive; says nothing of auth)."""
        return self.staff.is_staff(address)

    @property
    def uses_development_secret(self) -> bool:
        return self.gateway.secret == DEVELOPMENT_SECRET


class ConfigErrors(ConfigError):
    """Every problem found in one configuration; `errors` lists them in the order found."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        super().__init__(errors[0].key, errors[0].problem)
        self.errors: tuple[ConfigError, ...] = tuple(errors)

    def __str__(self) -> str:
        return "\n".join(f"{error.key}: {error.problem}" for error in self.errors)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings from `path`, `$TICKETGATE_CONFIG`, `./ticketgate.toml`, or the embedded defaults."""
    config_file = resolve_config_path(path, environ)
    if config_file is None:
        return embedded_defaults(environ)
    return settings_from_mapping(read_toml(config_file), source=config_file, environ=environ)


def validate(path: str | Path | None = None, environ: Mapping[str, str] = os.environ) -> list[ConfigError]:
    """Every problem in the config `load_settings` would read; an empty list when it is good."""
    try:
        load_settings(path, environ)
    except ConfigErrors as errors:
        return list(errors.errors)
    return []


def resolve_config_path(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read, or None for the embedded defaults."""
    if path is not None:
        return Path(path).absolute()
    from_env = environ.get(CONFIG_ENV, "").strip()
    if from_env:
        return Path(from_env).absolute()
    local = Path(DEFAULT_CONFIG_FILE)
    return local.absolute() if local.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML file; an unreadable or invalid file is a ConfigErrors with key `config`."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror or exc}"
    except UnicodeDecodeError as exc:
        problem = f"{path} is not valid TOML: not UTF-8 text ({exc.reason} at byte {exc.start})"
    except tomllib.TOMLDecodeError as exc:
        problem = f"{path} is not valid TOML: {exc}"
    raise ConfigErrors([ConfigError("config", problem)])


def settings_from_mapping(
    data: Mapping[str, Any],
    *,
    source: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """Settings from the contents of a config file (already parsed); `gateway.secret` is required."""
    return _build(data, source=source, environ=environ, embedded=False)


def embedded_defaults(environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings with no config file: a trial setup on this machine, keyed by DEVELOPMENT_SECRET."""
    return _build({}, source=None, environ=environ, embedded=True)


def parse_relay(relay: str) -> RelayTarget:
    """`dir:PATH`, `smtp://host[:port]` or `smtps://host[:port]`; ValueError says what is wrong."""
    expected = '"dir:PATH", "smtp://HOST:PORT" or "smtps://HOST:PORT"'
    if relay.startswith("dir:"):
        path = relay[len("dir:") :].strip()
        if not path:
            raise ValueError(f'expected a folder after "dir:", such as "dir:./outgoing", got {relay!r}')
        return RelayTarget(scheme="dir", path=path)
    scheme = relay.partition("://")[0].lower() if "://" in relay else ""
    if scheme not in ("smtp", "smtps"):
        raise ValueError(f"expected {expected}, got {relay!r}")
    parts = urlsplit(relay)
    if parts.username is not None or parts.password is not None:
        raise ValueError("put the login in outbound.user and outbound.password, not in the relay URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"expected {expected} with nothing after the port, got {relay!r}")
    host = parts.hostname
    if not host or not _is_host(host):
        raise ValueError(f"expected {expected} with a valid host name, got {relay!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"port must be a number from 1 to 65535, got {relay!r}") from None
    if port == 0:
        raise ValueError(f"port must be a number from 1 to 65535, got {relay!r}")
    if port is None:
        port = 465 if scheme == "smtps" else 25
    return RelayTarget(scheme="smtps" if scheme == "smtps" else "smtp", host=host, port=port)


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` -> (host, port); ValueError says what is wrong."""
    bracketed = re.fullmatch(r"\[([^\]]*)\]:([^:]*)", listen)
    if bracketed:
        host, port_text = bracketed.groups()
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address (in {listen!r})") from None
    else:
        host, sep, port_text = listen.rpartition(":")
        if not sep or not host:
            raise ValueError(f'expected HOST:PORT such as "127.0.0.1:2525" or "[::1]:2525", got {listen!r}')
        if ":" in host:
            raise ValueError(f'an IPv6 address needs brackets, such as "[::1]:2525", got {listen!r}')
        if not _is_host(host):
            raise ValueError(f"{host!r} is not a valid host name or IP address (in {listen!r})")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, got {port_text!r} (in {listen!r})")
    return host, int(port_text)


# --------------------------------------------------------------------------------------------
# Reading tables: typed accessors that record problems instead of stopping at the first one
# --------------------------------------------------------------------------------------------

E = TypeVar("E", bound=StrEnum)


class _Problems:
    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, key: str, problem: str) -> None:
        self.errors.append(ConfigError(key, problem))


class _Table:
    """One TOML table being read. Each accessor remembers the key it was asked for, so `finish`
    can call every other key unknown and suggest the nearest known one."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: _Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self._known: list[str] = []

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, text: str) -> None:
        self.problems.add(self.key(name), text)

    def has(self, name: str) -> bool:
        return name in self.data

    def _typed(self, name: str, check: Callable[[Any], bool], expected: str) -> Any:
        """The value; None when it is absent, or has the wrong type (a problem is recorded)."""
        self._known.append(name)
        if name not in self.data:
            return None
        value = self.data[name]
        if not check(value):
            self.problem(name, f"expected {expected}, got {_describe(value)}")
            return None
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._typed(name, _is_str, "a string")
        if value is None:
            return None
        if not value.strip():
            self.problem(name, "must not be empty")
            return None
        return str(value).strip()

    def text(self, name: str, default: str) -> str:
        value = self.optional_text(name)
        return default if value is None else value

    def required_text(self, name: str, what: str) -> str:
        if not self.has(name):
            self._known.append(name)
            self.problem(name, f"required — {what}")
            return ""
        return self.optional_text(name) or ""

    def integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        value = self._typed(name, _is_int, "an integer")
        if value is None:
            return default
        if value < minimum:
            self.problem(name, f"must be {minimum} or more, got {value}")
            return default
        return int(value)

    def seconds(self, name: str, default: float) -> float:
        value = self._typed(name, _is_number, "a number of seconds")
        if value is None:
            return default
        if not math.isfinite(value) or value <= 0:
            self.problem(name, f"must be a number of seconds above 0, got {value}")
            return default
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._typed(name, lambda v: isinstance(v, bool), "true or false")
        return default if value is None else bool(value)

    def text_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if isinstance(self.data.get(name), str):
            self._known.append(name)
            value = self.data[name]
            self.problem(name, f"expected an array of strings, got a string: write [{_toml_str(value)}]")
            return default
        value = self._typed(name, lambda v: isinstance(v, list), "an array of strings")
        if value is None:
            return default
        items: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(f"{name}[{index}]", f"expected a string, got {_describe(item)}")
            elif not item.strip():
                self.problem(f"{name}[{index}]", "must not be empty")
            else:
                items.append(item.strip())
        return tuple(items)

    def choice(self, name: str, enum: type[E], default: E) -> E:
        chosen = self.optional_choice(name, enum)
        return default if chosen is None else chosen

    def optional_choice(self, name: str, enum: type[E]) -> E | None:
        value = self.optional_text(name)
        if value is None:
            return None
        member = _enum_member(enum, value)
        if member is None:
            self.problem(name, f"expected one of {_one_of(m.value for m in enum)}, got {value!r}")
        return member

    def address(self, name: str) -> str | None:
        value = self.optional_text(name)
        if value is None:
            return None
        problem = _address_problem(value)
        if problem:
            self.problem(name, problem)
            return None
        return value

    def address_list(self, name: str, default: tuple[str, ...], *, wildcard: bool = False) -> tuple[str, ...]:
        good: list[str] = []
        for index, value in enumerate(self.text_list(name, default)):
            problem = _address_problem(value, wildcard_domain=wildcard)
            if problem:
                self.problem(f"{name}[{index}]", problem)
            elif value.lower() not in (seen.lower() for seen in good):
                good.append(value)
        return tuple(good)

    def table(self, name: str) -> _Table:
        value = self._typed(name, lambda v: isinstance(v, dict), f"a table [{self.key(name)}]")
        return _Table(value or {}, self.key(name), self.problems)

    def tables(self, name: str) -> list[_Table]:
        key = self.key(name)
        value = self._typed(
            name,
            lambda v: isinstance(v, list) and all(isinstance(item, dict) for item in v),
            f"an array of tables (write [[{key}]] for each)",
        )
        return [_Table(item, f"{key}[{index}]", self.problems) for index, item in enumerate(value or [])]

    def finish(self) -> None:
        """Report every key nobody asked for: most often a typo."""
        known = list(dict.fromkeys(self._known))
        for name in self.data:
            if name in known:
                continue
            close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
            if close:
                hint = f"did you mean {close[0]!r}?"
            else:
                hint = f"expected one of {', '.join(known)}" if known else "this table takes no keys"
            self.problem(name, f"unknown key; {hint}")


# --------------------------------------------------------------------------------------------
# Building Settings, one section at a time
# --------------------------------------------------------------------------------------------


def _build(
    data: Mapping[str, Any], *, source: Path | None, environ: Mapping[str, str], embedded: bool
) -> Settings:
    problems = _Problems()
    root = _Table(data, "", problems)

    gateway = _read_gateway(root.table("gateway"), embedded=embedded)
    database = _read_database(root.table("database"))
    smtp = _read_smtp(root.table("smtp"))
    outbound = _read_outbound(root.table("outbound"), gateway)
    staff = _read_staff(root.table("staff"), gateway)
    tickets = _read_tickets(root.table("tickets"), root)
    customers = _read_customers(root.tables("customers"))
    limits = _read_limits(root.table("limits"))
    storage_table = root.table("storage")
    blob_dir = storage_table.text("blob_dir", "./blobs")
    blob_dir_given = storage_table.has("blob_dir")
    blobs_kind = _finished(storage_table, lambda t: t.optional_choice("blobs", BlobStoreKind))
    processing = _read_processing(root.table("processing"))
    imap = _read_imap(root.tables("imap"), tickets)
    notifications = _read_notifications(root.table("notifications"))
    metrics = _read_metrics(root.table("metrics"))
    logging_settings = _read_logging(root.table("logging"))
    security = _read_security(root.table("security"))
    response_targets = _read_response_targets(root.table("response_targets"))
    views = _read_views(root.table("views"))
    root.finish()

    override = environ.get(DATABASE_URL_ENV, "").strip()
    if override:
        problem = _database_url_problem(override)
        if problem:
            problems.add(DATABASE_URL_ENV, problem)
        database = DatabaseSettings(url=override)
    if blobs_kind is None:
        on_sqlite = database.url.lower().startswith("sqlite")
        blobs_kind = BlobStoreKind.DIR if on_sqlite or blob_dir_given else BlobStoreKind.DATABASE
    storage = StorageSettings(blob_dir=blob_dir, blobs=blobs_kind)

    if problems.errors:
        raise ConfigErrors(problems.errors)
    return Settings(
        gateway=gateway,
        database=database,
        smtp=smtp,
        outbound=outbound,
        staff=staff,
        tickets=tickets,
        customers=customers,
        limits=limits,
        storage=storage,
        processing=processing,
        imap=imap,
        source=source,
        notifications=notifications,
        metrics=metrics,
        logging=logging_settings,
        security=security,
        response_targets=response_targets,
        views=views,
    )


T = TypeVar("T")


def _finished(table: _Table, read: Callable[[_Table], T]) -> T:
    value = read(table)
    table.finish()
    return value


def _read_gateway(t: _Table, *, embedded: bool) -> GatewaySettings:
    addresses = t.address_list("addresses", DEFAULT_GATEWAY_ADDRESSES, wildcard=True)
    for index, address in enumerate(addresses):
        if "+" in address.partition("@")[0]:
            t.problem(
                f"addresses[{index}]",
                f"must not contain '+' ({address!r}): sub-addresses of each address are accepted anyway",
            )
    if t.has("addresses") and not addresses and not _has_problem_under(t, "addresses"):
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


def _read_database(t: _Table) -> DatabaseSettings:
    url = t.text("url", DEFAULT_DATABASE_URL)
    problem = _database_url_problem(url)
    if problem:
        t.problem("url", problem)
    t.finish()
    return DatabaseSettings(url=url)


def _read_smtp(t: _Table) -> SmtpSettings:
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


def _read_smtp_tls(t: _Table) -> dict[str, Any]:
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


def _read_outbound(t: _Table, gateway: GatewaySettings) -> OutboundSettings:
    relay = t.text("relay", DEFAULT_RELAY)
    target: RelayTarget | None = None
    try:
        target = parse_relay(relay)
    except ValueError as exc:
        t.problem("relay", str(exc))

    from_address = t.text("from", _default_from(gateway.addresses))
    problem = _mailbox_problem(from_address)
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


def _read_staff(t: _Table, gateway: GatewaySettings) -> StaffSettings:
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


def _read_tickets(t: _Table, root: _Table) -> TicketSettings:
    categories = _read_categories(t)
    default_category = DEFAULT_CATEGORY
    given = t.optional_text("default_category")
    if given is not None:
        found = _category(given, categories)
        if found is None:
            t.problem(
                "default_category", f"{given!r} is not one of tickets.categories ({_one_of(categories)})"
            )
        else:
            default_category = found
    elif DEFAULT_CATEGORY not in categories and categories:
        t.problem(
            "default_category",
            f"required when tickets.categories does not include {DEFAULT_CATEGORY!r}: "
            f"one of {_one_of(categories)}",
        )

    status = t.choice("staff_reply_status", Status, Status.WAITING)
    if status is Status.CLOSED:
        t.problem(
            "staff_reply_status",
            "expected Open, In Progress, Waiting on user or Resolved, got 'Closed': a closed "
            "ticket takes no more replies",
        )
    settings = TicketSettings(
        categories=categories,
        default_category=default_category,
        default_priority=t.choice("default_priority", Priority, Priority.LOW),
        vocabulary=_read_tags(root, categories),
        auto_close_days=t.integer("auto_close_days", 7),
        staff_reply_status=status,
    )
    t.finish()
    return settings


def _read_categories(t: _Table) -> tuple[str, ...]:
    if not t.has("categories"):
        t.text_list("categories", ())  # records the key as known
        return DEFAULT_CATEGORIES
    categories: list[str] = []
    for index, name in enumerate(t.text_list("categories", ())):
        duplicate = _category(name, categories)
        if duplicate is not None:
            t.problem(f"categories[{index}]", f"{name!r} is listed twice (names are case-insensitive)")
        elif len(name) > 100 or any(ord(char) < 32 for char in name):
            t.problem(f"categories[{index}]", f"expected one line of at most 100 characters, got {name!r}")
        else:
            categories.append(name)
    if not categories and not _has_problem_under(t, "categories"):
        t.problem("categories", "must list at least one category (leave the key out for the defaults)")
    return tuple(categories) or DEFAULT_CATEGORIES


def _read_tags(root: _Table, categories: tuple[str, ...]) -> TagVocabulary:
    if not root.has("tags"):
        root.table("tags")  # records the key as known
        if categories == DEFAULT_CATEGORIES:
            return DEFAULT_VOCABULARY
        # The built-in words whose category this deployment has (priority words always apply).
        return TagVocabulary(
            words={
                word: meaning
                for word, meaning in DEFAULT_VOCABULARY.words.items()
                if meaning.category is None or meaning.category in categories
            }
        )
    t = root.table("tags")
    words: dict[str, TagMeaning] = {}
    spelled: dict[str, str] = {}
    for word, value in t.data.items():
        meaning = _tag_meaning(t, word, value, categories)
        lowered = word.strip().lower()
        if not re.fullmatch(r"\w[\w-]*", lowered):
            t.problem(
                word, "a tag word is letters, digits, '-' and '_' (it is written as [word] or support+word@)"
            )
        elif lowered in words:
            t.problem(word, f"the same word as {spelled[lowered]!r} (tag words are case-insensitive)")
        elif meaning is not None:
            words[lowered] = meaning
            spelled[lowered] = word
    return TagVocabulary(words=words)


def _tag_meaning(t: _Table, word: str, value: Any, categories: tuple[str, ...]) -> TagMeaning | None:
    names: list[Any] = value if isinstance(value, list) else [value]
    expected = "a priority or category name, or an array of one priority and one category"
    if not names or len(names) > 2 or not all(isinstance(name, str) for name in names):
        t.problem(word, f"expected {expected}, got {_describe(value)}")
        return None
    priority: Priority | None = None
    category: str | None = None
    for name in names:
        as_priority = _enum_member(Priority, name)
        as_category = _category(name, categories)
        if as_priority is not None and priority is None:
            priority = as_priority
        elif as_category is not None and category is None:
            category = as_category
        elif as_priority is not None or as_category is not None:
            t.problem(word, f"expected {expected}, got two of the same kind: {value!r}")
            return None
        else:
            t.problem(
                word,
                f"{name!r} is neither a priority ({_one_of(p.value for p in Priority)}) "
                f"nor one of tickets.categories ({_one_of(categories)})",
            )
            return None
    return TagMeaning(priority=priority, category=category)


def _read_customers(tables: list[_Table]) -> CustomerDirectory:
    entries: list[Customer] = []
    seen: dict[str, str] = {}
    for t in tables:
        pattern = t.required_text("match", 'an address "ana@acme.example" or a domain "acme.example"')
        normalised = pattern.lower().removeprefix("@")
        if pattern:
            problem = _customer_pattern_problem(pattern)
            if problem:
                t.problem("match", problem)
            elif normalised in seen:
                t.problem("match", f"{pattern!r} is already matched by {seen[normalised]}")
            else:
                seen[normalised] = t.path
        if t.has("tier"):
            tier = t.choice("tier", Tier, Tier.FREE)
        else:
            t.required_text("tier", _one_of(m.value for m in Tier))
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


def _read_limits(t: _Table) -> LimitSettings:
    settings = LimitSettings(
        max_attachments=t.integer("max_attachments", 20),
        max_image_bytes=t.integer("max_image_bytes", 10 * MIB),
        max_image_pixels=t.integer("max_image_pixels", 40_000_000),
        max_attachment_bytes=t.integer("max_attachment_bytes", 25 * MIB),
        max_header_bytes=t.integer("max_header_bytes", 262144),
        max_mime_parts=t.integer("max_mime_parts", 500),
        max_mime_depth=t.integer("max_mime_depth", 20),
        new_tickets_per_sender_per_hour=t.integer("new_tickets_per_sender_per_hour", 30, minimum=0),
    )
    t.finish()
    return settings


def _read_response_targets(t: _Table) -> ResponseTargets:
    """Minutes to a first staff reply per priority (SPEC §12); Enterprise gets half of each."""
    default = ResponseTargets()
    targets = ResponseTargets(
        urgent=t.integer("urgent", default.urgent),
        high=t.integer("high", default.high),
        medium=t.integer("medium", default.medium),
        low=t.integer("low", default.low),
    )
    t.finish()
    return targets


_SUB_ADDRESS_WORD = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _read_views(t: _Table) -> ViewSettings:
    """`[views]`: the my-tickets word, its hourly limit, and the digest time in its time zone."""
    default = ViewSettings()
    word = t.text("my_tickets_word", default.my_tickets_word).strip().lower()
    if not _SUB_ADDRESS_WORD.fullmatch(word) or word.startswith("bounce"):
        t.problem(
            "my_tickets_word",
            f'expected a word of letters, digits, "-" or "_" for the sub-address (support+WORD@), '
            f'not starting with "bounce", got {word!r}',
        )
        word = default.my_tickets_word
    per_hour = t.integer("my_tickets_per_hour", default.my_tickets_per_hour)
    zone_name = t.text("timezone", default.timezone).strip()
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        t.problem(
            "timezone", f'expected an IANA time zone name such as "Europe/Oslo" or "UTC", got {zone_name!r}'
        )
        zone_name = default.timezone
    digest_at: time | None = None
    written = t.optional_text("digest_at")
    if written is not None:
        try:
            digest_at = time.fromisoformat(written.strip())
        except ValueError:
            t.problem("digest_at", f'expected a time of day as "HH:MM", such as "08:00", got {written!r}')
        if digest_at is not None and (digest_at.second or digest_at.microsecond or digest_at.tzinfo):
            t.problem(
                "digest_at",
                f'expected "HH:MM" without seconds or offset (the zone is views.timezone), got {written!r}',
            )
            digest_at = None
    t.finish()
    return ViewSettings(
        my_tickets_word=word, my_tickets_per_hour=per_hour, digest_at=digest_at, timezone=zone_name
    )


def _read_security(t: _Table) -> SecuritySettings:
    written = tuple(f"{name}: {value}" for name, value in DEFAULT_SPAM_HEADERS)
    pairs: list[tuple[str, str]] = []
    for index, entry in enumerate(t.text_list("spam_headers", written)):
        name, colon, value = entry.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if not colon or not _HEADER_NAME.fullmatch(name) or not value:
            t.problem(f"spam_headers[{index}]", f'expected "Header-Name: value", got {entry!r}')
        elif (name, value) not in pairs:
            pairs.append((name, value))
    t.finish()
    return SecuritySettings(spam_headers=tuple(pairs))


def _read_processing(t: _Table) -> ProcessingSettings:
    settings = ProcessingSettings(
        workers=t.integer("workers", 1),
        max_attempts=t.integer("max_attempts", 5),
        retry_base_seconds=t.seconds("retry_base_seconds", 30.0),
        processes=t.integer("processes", 1, minimum=0),
    )
    t.finish()
    return settings


def _read_metrics(t: _Table) -> MetricsSettings:
    listen = t.optional_text("listen")
    address: tuple[str, int] | None = None
    if listen is not None:
        try:
            address = parse_listen(listen)
        except ValueError as exc:
            t.problem("listen", str(exc))
    t.finish()
    return MetricsSettings(listen=address)


def _read_logging(t: _Table) -> LoggingSettings:
    chosen = t.text("format", "text").strip().lower()
    if chosen not in ("text", "json"):
        t.problem("format", f'expected "text" or "json", got {chosen!r}')
        chosen = "text"
    t.finish()
    return LoggingSettings(format="json" if chosen == "json" else "text")


def _read_notifications(t: _Table) -> NotificationSettings:
    defaults = NotificationSettings()
    settings = NotificationSettings(
        templates_dir=t.optional_text("templates_dir"),
        max_attempts=t.integer("max_attempts", defaults.max_attempts),
        retry_base_seconds=t.seconds("retry_base_seconds", defaults.retry_base_seconds),
        retry_max_seconds=t.seconds("retry_max_seconds", defaults.retry_max_seconds),
        deadline_hours=t.seconds("deadline_hours", defaults.deadline_hours),
        max_attached_bytes=t.integer("max_attached_bytes", defaults.max_attached_bytes, minimum=0),
    )
    t.finish()
    return settings


_TLS_MODES: tuple[Literal["ssl", "starttls", "none"], ...] = ("ssl", "starttls", "none")
_LOGINS = ("password", "password_command", "oauth2_token_command")


def _read_imap(tables: list[_Table], tickets: TicketSettings) -> tuple[ImapAccount, ...]:
    accounts: list[ImapAccount] = []
    names: dict[str, str] = {}
    for t in tables:
        host = t.required_text("host", 'the IMAP server, such as "imap.example.com"')
        if host and not _is_host(host):
            t.problem("host", f"expected a host name or IP address, got {host!r}")
        tls_text = t.text("tls", "ssl").lower()
        tls = next((mode for mode in _TLS_MODES if mode == tls_text), None)
        if tls is None:
            t.problem("tls", f"expected one of {_one_of(_TLS_MODES)}, got {tls_text!r}")
            tls = "ssl"
        port = t.integer("port", 993 if tls == "ssl" else 143)
        if port > 65535:
            t.problem("port", f"must be a number from 1 to 65535, got {port}")
        username = t.required_text("username", "the login name of the mailbox")

        logins = {login: t.optional_text(login) for login in _LOGINS}
        given = [login for login in _LOGINS if t.has(login)]
        if not given:
            t.problem("password", f"required — give exactly one of {_one_of(_LOGINS)}")
        elif len(given) > 1:
            t.problem(given[1], f"give exactly one of {_one_of(_LOGINS)}, got {' and '.join(given)}")

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
            category = _category(category_text, tickets.categories)
            if category is None:
                t.problem(
                    "category",
                    f"{category_text!r} is not one of tickets.categories ({_one_of(tickets.categories)})",
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
            )
        )
        t.finish()
    return tuple(accounts)


# --------------------------------------------------------------------------------------------
# Small checks
# --------------------------------------------------------------------------------------------

_LOCAL_PART = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*")
_LABEL = re.compile(r"(?!-)(?:[^\W_]|-){1,63}(?<!-)")


def _is_domain(domain: str) -> bool:
    return len(domain) <= 253 and all(_LABEL.fullmatch(label) for label in domain.split("."))


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _is_domain(host)
    return True


def _address_problem(value: str, *, wildcard_domain: bool = False) -> str | None:
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
    if not _is_domain(domain):
        return f"{domain!r} is not a valid domain (in {value!r})"
    return None


def _mailbox_problem(value: str) -> str | None:
    """Why `value` is not one address with an optional display name, or None when it is."""
    expected = f'one address with an optional name, such as "Support <support@example.com>", got {value!r}'
    if any(char in value for char in "\r\n"):
        return f"expected {expected}"
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        return f"expected {expected}"
    return _address_problem(pairs[0][1])


def _customer_pattern_problem(pattern: str) -> str | None:
    if "@" in pattern and not pattern.startswith("@"):
        return _address_problem(pattern)
    domain = pattern.removeprefix("@")
    if not _is_domain(domain) or "." not in domain:
        return f'expected an address "ana@acme.example" or a domain "acme.example", got {pattern!r}'
    return None


def _database_url_problem(url: str) -> str | None:
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


def _category(name: str, categories: Iterable[str]) -> str | None:
    """The configured spelling of a category name given in any case."""
    wanted = name.strip().casefold()
    return next((category for category in categories if category.casefold() == wanted), None)


def _enum_member(enum: type[E], text: str) -> E | None:
    """The member whose value (or name) matches, case-insensitively: "waiting on user", "in-progress"."""
    wanted = _normalise_name(text)
    for member in enum:
        if wanted in (_normalise_name(member.value), _normalise_name(member.name)):
            return member
    return None


def _normalise_name(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip().casefold())


def _has_problem_under(t: _Table, name: str) -> bool:
    key = t.key(name)
    return any(error.key == key or error.key.startswith(f"{key}[") for error in t.problems.errors)


def _bare(address: str) -> str:
    return address.strip().strip("<>").strip().lower()


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _one_of(values: Iterable[str]) -> str:
    return ", ".join(values)


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _describe(value: Any) -> str:
    """A TOML value as a user would name it: "an integer (42)", "a string ('x')", "a table"."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__} ({value})"
