"""TOML configuration -> frozen, validated `Settings`; every problem names its dotted key.

Which file: `load_settings(path)` takes an explicit path, else `$TICKETGATE_CONFIG`, else
`./ticketgate.toml` when it exists, else the embedded defaults (`Settings.source is None`).
`$TICKETGATE_DATABASE_URL` overrides `database.url` in every case.

Errors: reading never stops at the first problem. `load_settings`, `settings_from_mapping` and
`embedded_defaults` raise one `ConfigErrors` (a subclass of `ConfigError`) whose `errors` tuple holds
every problem found, each a `ConfigError(key, problem)` such as `smtp.listen` or `imap[0].tls`.
`validate(path)` resolves the file the same way and returns that list (empty when all is well), so
`ticketgate check-config` can print every problem at once.

The package, by job: `settings.py` (the frozen types), `reader.py` (the validating table reader),
`sections/` (one reader per section, grouped by topic), `validators.py` and `endpoints.py` (checks
and parsers of single values), `loading.py` (which file, and the order sections are read in).
Everything importable from `gateway.config` before the split still is, from here.
"""

from gateway.config.endpoints import RelayTarget, parse_listen, parse_relay
from gateway.config.loading import (
    CONFIG_ENV,
    DATABASE_URL_ENV,
    DEFAULT_CONFIG_FILE,
    embedded_defaults,
    load_settings,
    read_toml,
    resolve_config_path,
    settings_from_mapping,
    validate,
)
from gateway.config.reader import ConfigErrors
from gateway.config.sections.gateway import (
    DEFAULT_DATABASE_URL,
    DEFAULT_GATEWAY_ADDRESSES,
    DEFAULT_TICKET_PREFIX,
    MIN_SECRET_LENGTH,
    SECRET_HINT,
)
from gateway.config.sections.mail import DEFAULT_DISPLAY_NAME, DEFAULT_FROM, DEFAULT_LISTEN, DEFAULT_RELAY
from gateway.config.settings import (
    DEFAULT_SPAM_HEADERS,
    DEVELOPMENT_SECRET,
    MIB,
    BlobStoreKind,
    Customer,
    CustomerDirectory,
    DatabaseSettings,
    FormSettings,
    GatewaySettings,
    ImapAccount,
    LimitSettings,
    LoggingSettings,
    MetricsSettings,
    NotificationSettings,
    OAuth2Settings,
    OutboundSettings,
    ProcessingSettings,
    RoutingRule,
    RuleMatch,
    SecuritySettings,
    Settings,
    SmtpSettings,
    StaffSettings,
    StorageSettings,
    TicketSettings,
    ViewSettings,
)
from gateway.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DATABASE_URL_ENV",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_DISPLAY_NAME",
    "DEFAULT_FROM",
    "DEFAULT_GATEWAY_ADDRESSES",
    "DEFAULT_LISTEN",
    "DEFAULT_RELAY",
    "DEFAULT_SPAM_HEADERS",
    "DEFAULT_TICKET_PREFIX",
    "DEVELOPMENT_SECRET",
    "MIB",
    "MIN_SECRET_LENGTH",
    "SECRET_HINT",
    "BlobStoreKind",
    "ConfigError",
    "ConfigErrors",
    "Customer",
    "CustomerDirectory",
    "DatabaseSettings",
    "FormSettings",
    "GatewaySettings",
    "ImapAccount",
    "LimitSettings",
    "LoggingSettings",
    "MetricsSettings",
    "NotificationSettings",
    "OAuth2Settings",
    "OutboundSettings",
    "ProcessingSettings",
    "RelayTarget",
    "RoutingRule",
    "RuleMatch",
    "SecuritySettings",
    "Settings",
    "SmtpSettings",
    "StaffSettings",
    "StorageSettings",
    "TicketSettings",
    "ViewSettings",
    "embedded_defaults",
    "load_settings",
    "parse_listen",
    "parse_relay",
    "read_toml",
    "resolve_config_path",
    "settings_from_mapping",
    "validate",
]
