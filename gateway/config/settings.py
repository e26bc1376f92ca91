"""The settings themselves: frozen dataclasses, one per config section, and `Settings` holding them.

Nothing here reads a file or reports a problem; `reader.py` and `sections/` build these values, and
every other part of ticketgate only ever sees them, already validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from email.utils import getaddresses
from enum import StrEnum
from pathlib import Path
from re import Pattern
from typing import Literal

from gateway.addresses import split_address
from gateway.config.endpoints import RelayTarget, parse_relay
from gateway.config.validators import bare_address
from gateway.domain import Address, Priority, Status, TagVocabulary, Tier
from gateway.response_targets import ResponseTargets

# Used only when there is no config file at all; `serve` warns while it is in use.
DEVELOPMENT_SECRET = "ticketgate-insecure-development-secret-do-not-use-in-production"
MIB = 1024 * 1024


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
    # PostgreSQL: how long the daemon waits for any answer before it takes the connection for dead
    reply_timeout: float = 15.0  # seconds


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
        wanted = bare_address(address)
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
        bare = bare_address(address)
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
class OAuth2Settings:
    """`[[imap]] oauth2 = {...}`: how ticketgate gets an XOAUTH2 access token itself (SPEC §14).

    `grant` is "client_credentials" (Microsoft 365 app-only) when no refresh token is given, else
    "refresh_token"; `token_url` and `scope` are already filled in from the provider's presets."""

    provider: Literal["microsoft", "google", "generic"]
    grant: Literal["client_credentials", "refresh_token"]
    token_url: str
    client_id: str
    client_secret: str | None = field(repr=False)
    client_secret_command: str | None
    refresh_token: str | None = field(repr=False)
    refresh_token_command: str | None
    scope: str | None
    tenant: str | None = None


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
    oauth2: OAuth2Settings | None = None  # the built-in token fetch (XOAUTH2), instead of a command


@dataclass(frozen=True)
class ProcessingSettings:
    workers: int  # processor threads in each worker process (in `serve` itself when processes = 0)
    max_attempts: int
    retry_base_seconds: float
    processes: int = 1  # worker processes of `serve`; 0 runs the processor threads in `serve` itself
    imap_reconcile_minutes: int = 10  # the scheduler compares IMAP folders with the inbox; 0: off
    # Whether the config names `processes`; if not, the loader sets it by the database
    # (sections/operations.py `default_processes`).
    processes_given: bool = True
    # How much lower than `serve` the worker processes' CPU priority is (nice): when the cores are
    # busy, intake's SMTP answers (which the sending server waits for) go first; 0: the same.
    # Absent from the config, the loader sets it by the database (`default_nice`).
    nice: int = 0
    nice_given: bool = True


@dataclass(frozen=True)
class NotificationSettings:
    """Templates and the outbox sender's retry policy (SPEC §7, §15): a notification is tried until
    its deadline, time decides when it is dead, not a count of tries."""

    templates_dir: str | None = None  # a deployment's own templates, tried before the built-in ones
    retry_base_seconds: float = 60.0  # first back-off; later ones double, capped at retry_max_seconds
    retry_max_seconds: float = 3600.0  # at most an hour (SPEC §15)
    deadline_hours: float = 48.0  # a notification still unsent this long after it was queued is dead
    max_attached_bytes: int = 10 * 1024 * 1024  # originals attached to one staff notification (SPEC §12)
    # SPEC §13 Copies: staff_reply and status_changed also go to the ticket's participants, in Cc.
    copy_participants: bool = True
    # The sender's look for due rows when nothing woke it (retries coming due, a dead node's claims).
    poll_seconds: float = 1.0
    # `max_attempts` as an old config still gives it: accepted, no longer read (said at start).
    ignored_max_attempts: int | None = None

    @property
    def notices(self) -> tuple[str, ...]:
        """What `serve` and `check-config` tell the operator about these settings."""
        if self.ignored_max_attempts is None:
            return ()
        return (
            f"notifications.max_attempts = {self.ignored_max_attempts} is no longer read: a notification "
            f"is tried until notifications.deadline_hours ({self.deadline_hours:g}) has passed; "
            "remove the key",
        )


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
class ControlSettings:
    """`[control]`: the Unix socket on which `serve` answers read-only commands. `socket` None
    (absent): on, at the default path (gateway/control_socket.py); "": off; else that path."""

    socket: str | None = None


@dataclass(frozen=True)
class LoggingSettings:
    """`[logging]`: "text" (readable lines) or "json" (one object per line, for log collectors)."""

    format: Literal["text", "json"] = "text"


MATCH_KEYS: tuple[str, ...] = ("from", "to", "cc", "subject", "body", "header")


@dataclass(frozen=True)
class RuleMatch:
    """One match key of a routing rule: `key` is one of MATCH_KEYS; `header` the header's name
    (lower case) for key "header"; `pattern` compiled case-insensitive, searched, not anchored."""

    key: str
    pattern: Pattern[str]
    header: str | None = None

    @property
    def written(self) -> str:
        """As the config wrote it, for explanations: `subject ~ "invoice"`, `List-Id ~ ".*x"`."""
        return f"{self.header or self.key} ~ {self.pattern.pattern!r}"


@dataclass(frozen=True)
class RoutingRule:
    """`[[rules]]` (SPEC §14): every match must hold; then the actions apply to the new ticket."""

    name: str
    matches: tuple[RuleMatch, ...]
    priority: Priority | None = None
    category: str | None = None
    assign: str | None = None
    acknowledge: bool = True
    drop: bool = False


@dataclass(frozen=True)
class FormSettings:
    """One `[[forms]]` entry (SPEC §13): a web form that mails from `sender` with the visitor in
    Reply-To, and the labels of its fields in the body (gateway/mail/forms.py reads them)."""

    sender: str  # bare address, matched against From (case-insensitively)
    title_field: str = "Title"
    description_field: str = "Description"
    priority_field: str = "Priority"
    category_field: str = "Category"
    email_field: str = "Email"
    name_field: str = "Name"
    other_fields: tuple[str, ...] = ()  # the form's other labels: they end a Description, are not read
    require_authentication: bool = True  # DKIM or a trusted Authentication-Results, as for staff (§5)

    @property
    def labels(self) -> dict[str, str]:
        """{field: label} of the fields read."""
        return {
            "title": self.title_field,
            "description": self.description_field,
            "priority": self.priority_field,
            "category": self.category_field,
            "email": self.email_field,
            "name": self.name_field,
        }


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
    control: ControlSettings = field(default_factory=ControlSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    response_targets: ResponseTargets = field(default_factory=ResponseTargets)
    views: ViewSettings = field(default_factory=ViewSettings)
    rules: tuple[RoutingRule, ...] = ()  # `[[rules]]`, in the order written
    forms: tuple[FormSettings, ...] = ()  # `[[forms]]`: web forms whose mail is read for its fields

    def is_staff(self, address: str) -> bool:
        """Whether `address` is a configured staff address (case-insensitive; says nothing of auth)."""
        return self.staff.is_staff(address)

    def form_for(self, address: str) -> FormSettings | None:
        """The `[[forms]]` entry whose sender is `address` (a From), or None."""
        wanted = bare_address(address)
        return next((form for form in self.forms if form.sender.lower() == wanted), None)

    @property
    def uses_development_secret(self) -> bool:
        return self.gateway.secret == DEVELOPMENT_SECRET
