"""The TOML configuration as an operator meets it: defaults, the example files, file resolution,
and errors that name the key and say what was expected."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gateway.config import (
    DEFAULT_CONFIG_FILE,
    DEVELOPMENT_SECRET,
    ConfigErrors,
    Customer,
    CustomerDirectory,
    RelayTarget,
    Settings,
    embedded_defaults,
    load_settings,
    settings_from_mapping,
    validate,
)
from gateway.config.sections.operations import MAX_DEFAULT_PROCESSES, default_processes
from gateway.domain import (
    BILLING,
    DEFAULT_CATEGORIES,
    DEFAULT_VOCABULARY,
    SECURITY,
    TECHNICAL,
    Address,
    Priority,
    Status,
    TagMeaning,
    Tier,
)
from gateway.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = PROJECT_ROOT / "config" / "smilepass.toml"
MINIMAL = PROJECT_ROOT / "config" / "minimal.toml"

SECRET = "a-test-secret-that-is-long-enough"
GOOD_HEAD = f'[gateway]\naddresses = ["support@example.com"]\nsecret = "{SECRET}"\n'
NO_ENV: dict[str, str] = {}


def write(tmp_path: Path, text: str, name: str = "ticketgate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[ConfigError]:
    return validate(write(tmp_path, text), NO_ENV)


# --- defaults --------------------------------------------------------------------------------


def test_embedded_defaults_are_a_local_trial_setup() -> None:
    settings = embedded_defaults(NO_ENV)

    assert settings.source is None
    assert settings.gateway.addresses == ("support@*",)
    assert settings.gateway.ticket_prefix == "TG"
    assert settings.gateway.secret == DEVELOPMENT_SECRET
    assert settings.uses_development_secret
    assert settings.database.url == "sqlite:///ticketgate.db"
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.lmtp) == ("127.0.0.1", 2525, False)
    assert settings.smtp.max_message_size == 26214400
    assert settings.smtp.max_recipients == 50
    assert settings.outbound.relay_target == RelayTarget(scheme="dir", path="./outgoing")
    assert settings.outbound.sender == Address(address="support@localhost", name="ticketgate")
    assert settings.outbound.ack_limit_per_hour == 5
    assert settings.staff.addresses == ()
    assert not settings.is_staff("ana@smilepass.example")
    assert settings.tickets.categories == DEFAULT_CATEGORIES
    assert settings.tickets.default_category == TECHNICAL
    assert settings.tickets.default_priority is Priority.LOW
    assert settings.tickets.vocabulary == DEFAULT_VOCABULARY
    assert settings.tickets.auto_close_days == 7
    assert settings.tickets.staff_reply_status is Status.WAITING
    assert settings.limits.max_attachments == 20
    assert settings.limits.max_image_bytes == 10 * 1024 * 1024
    assert settings.limits.max_image_pixels == 40_000_000
    assert settings.storage.blob_dir == "./blobs"
    assert settings.processing.workers == 1
    assert settings.processing.processes == 1  # processing beside serve, in a worker process
    assert settings.imap == ()


def test_load_without_any_config_gives_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ=NO_ENV) == embedded_defaults(NO_ENV)


def test_a_file_with_only_the_secret_gets_the_same_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, f'[gateway]\nsecret = "{SECRET}"\n'), NO_ENV)
    defaults = embedded_defaults(NO_ENV)

    assert settings.source == tmp_path / DEFAULT_CONFIG_FILE
    assert not settings.uses_development_secret
    assert (settings.smtp, settings.tickets, settings.limits) == (
        defaults.smtp,
        defaults.tickets,
        defaults.limits,
    )


def test_from_defaults_to_the_first_gateway_address(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD_HEAD), NO_ENV)
    assert settings.outbound.sender == Address(address="support@example.com", name="ticketgate")


def test_secrets_and_passwords_stay_out_of_repr() -> None:
    settings = settings_from_mapping(
        {
            "gateway": {"secret": SECRET},
            "database": {"url": "postgresql+psycopg://tg:dbpass123@db/tg"},
            "outbound": {"relay": "smtp://mx:587", "user": "u", "password": "relaypass123"},
            "imap": [{"host": "imap.example.com", "username": "u", "password": "imappass123"}],
        },
        environ=NO_ENV,
    )
    text = repr(settings)
    for secret in (SECRET, "dbpass123", "relaypass123", "imappass123"):
        assert secret not in text


# --- the example files -----------------------------------------------------------------------


def test_smilepass_example_loads_and_has_what_it_says() -> None:
    settings = load_settings(EXAMPLE, NO_ENV)

    assert settings.source == EXAMPLE
    assert settings.gateway.addresses == ("support@smilepass.example",)
    assert settings.gateway.ticket_prefix == "SP"
    assert settings.outbound.sender == Address("support@smilepass.example", "SmilePass Support")
    assert settings.outbound.relay_target == RelayTarget(scheme="dir", path="./outgoing")
    assert settings.tickets.categories == DEFAULT_CATEGORIES
    assert settings.tickets.vocabulary.words == DEFAULT_VOCABULARY.words
    assert settings.is_staff("Ana@SmilePass.example")
    assert settings.staff.triage == "triage@smilepass.example"
    assert settings.staff.security_contact == "security@smilepass.example"
    assert settings.imap == ()  # commented out, so the file loads without a server
    tiers = {customer.tier for customer in settings.customers.entries}
    assert tiers == {Tier.FREE, Tier.PRO, Tier.ENTERPRISE}
    for customer in settings.customers.entries:
        if customer.tier is Tier.ENTERPRISE:
            assert customer.account_manager is not None
            assert settings.is_staff(customer.account_manager)


def test_smilepass_example_imap_block_is_valid_once_uncommented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^#(?=[\[a-z])", "", text)
    assert uncommented != text

    settings = settings_from_mapping(tomllib.loads(uncommented), environ=NO_ENV)

    (account,) = settings.imap
    assert account.name == "billing"
    assert account.username == "billing@smilepass.example"
    assert (account.tls, account.port) == ("ssl", 993)
    assert account.category == BILLING
    assert account.password is None and account.password_command is not None
    assert (account.folder, account.processed_folder, account.quarantine_folder) == (
        "INBOX",
        "Processed",
        "Quarantine",
    )


def test_every_key_of_the_example_is_commented() -> None:
    section = ""
    previous = ""
    for number, line in enumerate(EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        header = re.match(r"#?\[+([a-z_]+)\]+$", line)
        if header:
            section = header.group(1)
        # [tags] and [[customers]] entries are explained by one comment above the block.
        elif re.match(r"#?[a-z_0-9]+ = ", line) and section not in ("tags", "customers"):
            assert previous.startswith("# "), f"line {number} has no comment above it: {line}"
        previous = line


def test_minimal_example_loads() -> None:
    settings = load_settings(MINIMAL, NO_ENV)
    assert settings.gateway.addresses == ("support@example.com",)
    assert settings.outbound.relay_target == RelayTarget(scheme="smtp", host="localhost", port=25)


# --- where the config comes from -------------------------------------------------------------


def test_explicit_path_wins_over_environment_and_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOOD_HEAD + '[tickets]\ndefault_priority = "High"\n')
    from_env = write(tmp_path, GOOD_HEAD + '[tickets]\ndefault_priority = "Medium"\n', "env.toml")
    explicit = write(tmp_path, GOOD_HEAD + '[tickets]\ndefault_priority = "Urgent"\n', "explicit.toml")

    settings = load_settings(explicit, {"TICKETGATE_CONFIG": str(from_env)})

    assert settings.source == explicit
    assert settings.tickets.default_priority is Priority.URGENT


def test_ticketgate_config_wins_over_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOOD_HEAD + '[tickets]\ndefault_priority = "High"\n')
    from_env = write(tmp_path, GOOD_HEAD + '[tickets]\ndefault_priority = "Medium"\n', "env.toml")

    settings = load_settings(environ={"TICKETGATE_CONFIG": str(from_env)})

    assert settings.source == from_env
    assert settings.tickets.default_priority is Priority.MEDIUM


def test_ticketgate_toml_in_working_folder_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, GOOD_HEAD + '[tickets]\ndefault_priority = "High"\n')

    settings = load_settings(environ=NO_ENV)

    assert settings.source == tmp_path / "ticketgate.toml"
    assert settings.tickets.default_priority is Priority.HIGH


def test_missing_config_file_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as raised:
        load_settings(environ={"TICKETGATE_CONFIG": str(tmp_path / "nowhere.toml")})
    assert raised.value.key == "config"
    assert "nowhere.toml" in raised.value.problem


@pytest.mark.parametrize("with_file", [False, True])
def test_database_url_from_environment_overrides(tmp_path: Path, with_file: bool) -> None:
    url = "postgresql+psycopg://tg@db.internal/tickets"
    environ = {"TICKETGATE_DATABASE_URL": url}
    if with_file:
        path = write(tmp_path, GOOD_HEAD + '[database]\nurl = "sqlite:///elsewhere.db"\n')
        settings = load_settings(path, environ)
    else:
        settings = embedded_defaults(environ)
    assert settings.database.url == url


def test_bad_database_url_from_environment_is_named_without_echoing_it() -> None:
    with pytest.raises(ConfigErrors) as raised:
        embedded_defaults({"TICKETGATE_DATABASE_URL": "mysql://root:hunter22@db/x"})
    assert raised.value.key == "TICKETGATE_DATABASE_URL"
    assert "hunter22" not in str(raised.value)


# --- the customer directory ------------------------------------------------------------------


@pytest.fixture
def directory() -> CustomerDirectory:
    settings = settings_from_mapping(
        {
            "gateway": {"secret": SECRET},
            "customers": [
                {"match": "acme.example", "tier": "enterprise", "account_manager": "kim@smilepass.example"},
                {"match": "Intern@Acme.example", "tier": "Free"},
                {"match": "@initech.example", "tier": "PRO", "name": "Initech"},
            ],
        },
        environ=NO_ENV,
    )
    return settings.customers


@pytest.mark.parametrize(
    ("address", "tier"),
    [
        ("bob@acme.example", Tier.ENTERPRISE),  # domain
        ("BOB@ACME.EXAMPLE", Tier.ENTERPRISE),  # case-insensitive
        ("ops@mail.acme.example", Tier.ENTERPRISE),  # subdomain
        ("intern@acme.example", Tier.FREE),  # exact address beats its domain
        ("<intern@ACME.example>", Tier.FREE),
        ("peter@initech.example", Tier.PRO),  # "@domain" form
        ("someone@notacme.example", None),  # a suffix is not a parent domain
        ("someone@example", None),
        ("not an address", None),
    ],
)
def test_customer_lookup(directory: CustomerDirectory, address: str, tier: Tier | None) -> None:
    found = directory.lookup(address)
    assert (found.tier if found else None) == tier
    assert directory.tier_of(address) == (tier or Tier.FREE)


def test_customer_entries_keep_their_details(directory: CustomerDirectory) -> None:
    assert directory.entries[0] == Customer("acme.example", Tier.ENTERPRISE, "kim@smilepass.example", None)
    assert directory.entries[2].pattern == "initech.example"
    assert directory.entries[2].name == "Initech"


# --- values written loosely but unambiguously ------------------------------------------------


def test_names_are_case_insensitive_and_spelled_canonically(tmp_path: Path) -> None:
    text = GOOD_HEAD + (
        '[tickets]\ndefault_category = "billing & payments"\ndefault_priority = "urgent"\n'
        'staff_reply_status = "in progress"\n'
        '[tags]\nDringend = "URGENT"\nsicherheit = ["security", "high"]\n'
        '[smtp]\nlisten = "[::1]:25"\nlmtp = true\ncommand_timeout = 2.5\n'
        '[outbound]\nrelay = "smtps://mail.example.com"\nuser = "tg"\npassword = "pw"\n'
        "[[imap]]\nhost = 'imap.example.com'\ntls = 'STARTTLS'\nusername = 'u'\noauth2_token_command = 't'\n"
    )
    settings = load_settings(write(tmp_path, text), NO_ENV)

    assert settings.tickets.default_category == BILLING
    assert settings.tickets.default_priority is Priority.URGENT
    assert settings.tickets.staff_reply_status is Status.IN_PROGRESS
    assert settings.tickets.vocabulary.lookup("DRINGEND") == TagMeaning(priority=Priority.URGENT)
    assert settings.tickets.vocabulary.lookup("sicherheit") == TagMeaning(Priority.HIGH, SECURITY)
    assert settings.tickets.vocabulary.lookup("urgent") is None  # [tags] replaces the built-in words
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.lmtp) == ("::1", 25, True)
    assert settings.smtp.command_timeout == 2.5
    assert settings.outbound.relay_target == RelayTarget(scheme="smtps", host="mail.example.com", port=465)
    (account,) = settings.imap
    assert (account.name, account.tls, account.port) == ("u", "starttls", 143)


def test_custom_categories_keep_only_the_built_in_tags_that_fit(tmp_path: Path) -> None:
    text = GOOD_HEAD + '[tickets]\ncategories = ["Billing & Payments", "Other"]\ndefault_category = "Other"\n'
    vocabulary = load_settings(write(tmp_path, text), NO_ENV).tickets.vocabulary

    assert vocabulary.lookup("invoice") == TagMeaning(category=BILLING)
    assert vocabulary.lookup("urgent") == TagMeaning(priority=Priority.URGENT)
    assert vocabulary.lookup("bug") is None


# --- errors ----------------------------------------------------------------------------------

BROKEN: list[tuple[str, str, str]] = [
    # (config text, the key named, words the problem must contain)
    ("[gateway]\naddresses = ['support@example.com']\n", "gateway.secret", "required"),
    ('[gateway]\nsecret = "short"\n', "gateway.secret", "too short"),
    (f'[gateway]\nsecret = "{DEVELOPMENT_SECRET}"\n', "gateway.secret", "development secret"),
    (GOOD_HEAD.replace('"support@example.com"', '"support"'), "gateway.addresses[0]", "'support'"),
    (GOOD_HEAD.replace('"support@example.com"', '"help+x@example.com"'), "gateway.addresses[0]", "'+'"),
    (GOOD_HEAD.replace('["support@example.com"]', '"support@example.com"'), "gateway.addresses", "array"),
    (GOOD_HEAD + 'ticket_prefix = "S-P"\n', "gateway.ticket_prefix", "letters and digits"),
    (GOOD_HEAD + "[database]\nurl = 'mysql://x/y'\n", "database.url", "'mysql'"),
    (GOOD_HEAD + "[smtp]\nlisten = 2525\n", "smtp.listen", "expected a string, got an integer (2525)"),
    (GOOD_HEAD + "[smtp]\nlisten = 'localhost'\n", "smtp.listen", "HOST:PORT"),
    (GOOD_HEAD + "[smtp]\nlisten = '127.0.0.1:70000'\n", "smtp.listen", "1 to 65535"),
    (GOOD_HEAD + "[smtp]\nlisten = '::1:25'\n", "smtp.listen", "brackets"),
    (GOOD_HEAD + "[smtp]\nlmtp = 'yes'\n", "smtp.lmtp", "true or false"),
    (GOOD_HEAD + "[smtp]\nmax_message_size = 0\n", "smtp.max_message_size", "1 or more, got 0"),
    (GOOD_HEAD + "[smtp]\nmax_recipients = true\n", "smtp.max_recipients", "integer"),
    (GOOD_HEAD + "[smtp]\ndata_timeout = -1\n", "smtp.data_timeout", "above 0"),
    (GOOD_HEAD + "[outbound]\nrelay = 'lmtp://mx'\n", "outbound.relay", '"dir:PATH"'),
    (GOOD_HEAD + "[outbound]\nrelay = 'smtp://mx:0'\n", "outbound.relay", "1 to 65535"),
    (GOOD_HEAD + "[outbound]\nrelay = 'smtp://u:p@mx'\n", "outbound.relay", "outbound.user"),
    (GOOD_HEAD + "[outbound]\nfrom = 'Support'\n", "outbound.from", "optional name"),
    (GOOD_HEAD + "[outbound]\nrelay = 'smtp://mx'\nuser = 'tg'\n", "outbound.password", "required"),
    (GOOD_HEAD + "[outbound]\nack_limit_per_hour = -1\n", "outbound.ack_limit_per_hour", "0 or more"),
    (GOOD_HEAD + "[staff]\naddresses = ['ana@']\n", "staff.addresses[0]", "'ana@'"),
    (GOOD_HEAD + "[staff]\ntriage = 'support@example.com'\n", "staff.triage", "loop"),
    (GOOD_HEAD + "[tickets]\ndefault_priority = 'Critical'\n", "tickets.default_priority", "Urgent"),
    (GOOD_HEAD + "[tickets]\nstaff_reply_status = 'Closed'\n", "tickets.staff_reply_status", "closed"),
    (GOOD_HEAD + "[tickets]\ndefault_category = 'Nope'\n", "tickets.default_category", "'Nope'"),
    (
        GOOD_HEAD + "[tickets]\ncategories = ['A', 'a']\ndefault_category = 'A'\n",
        "tickets.categories[1]",
        "twice",
    ),
    (GOOD_HEAD + "[tickets]\nauto_close_days = 0\n", "tickets.auto_close_days", "1 or more"),
    (GOOD_HEAD + "[tags]\nbilling = 'Invoices'\n", "tags.billing", "'Invoices'"),
    (GOOD_HEAD + "[tags]\nurgent = 5\n", "tags.urgent", "integer"),
    (GOOD_HEAD + "[tags]\n'two words' = 'High'\n", "tags.two words", "letters"),
    (GOOD_HEAD + "[[customers]]\nmatch = 'acme.example'\ntier = 'Gold'\n", "customers[0].tier", "Enterprise"),
    (GOOD_HEAD + "[[customers]]\ntier = 'Pro'\n", "customers[0].match", "required"),
    (GOOD_HEAD + "[[customers]]\nmatch = 'acme'\ntier = 'Pro'\n", "customers[0].match", "domain"),
    (
        GOOD_HEAD + "[[customers]]\nmatch = 'a.example'\ntier = 'Pro'\n[[customers]]\nmatch = '@A.example'\n"
        "tier = 'Free'\n",
        "customers[1].match",
        "customers[0]",
    ),
    (GOOD_HEAD + "[limits]\nmax_image_pixels = 0\n", "limits.max_image_pixels", "1 or more"),
    (GOOD_HEAD + "[processing]\nworkers = 1.5\n", "processing.workers", "a float (1.5)"),
    (GOOD_HEAD + "[processing]\nprocesses = -1\n", "processing.processes", "must be 0 or more"),
    (GOOD_HEAD + "[imap]\nhost = 'imap.example.com'\n", "imap", "[[imap]]"),
    (
        GOOD_HEAD + "[[imap]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\ntls = 'tls'\n",
        "imap[0].tls",
        "'tls'",
    ),
    (GOOD_HEAD + "[[imap]]\nhost = 'h'\nusername = 'u'\n", "imap[0].password", "exactly one"),
    (
        GOOD_HEAD + "[[imap]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\npassword_command = 'c'\n",
        "imap[0].password_command",
        "exactly one",
    ),
    (
        GOOD_HEAD + "[[imap]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\n"
        "[[imap]]\nhost = 'h2'\nusername = 'U'\npassword = 'p'\n",
        "imap[1].name",
        "already",
    ),
    (
        GOOD_HEAD + "[[imap]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\ncategory = 'Sales'\n",
        "imap[0].category",
        "'Sales'",
    ),
    (
        GOOD_HEAD + "[[imap]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\nprocessed_folder = 'INBOX'\n",
        "imap[0].processed_folder",
        "differ",
    ),
    (
        GOOD_HEAD + "[[imap]]\nhost = 'h'\nusername = 'u'\npassword = 'p'\nport = 99999\n",
        "imap[0].port",
        "65535",
    ),
    (GOOD_HEAD + "[smtp]\nlisten_on = '127.0.0.1:25'\n", "smtp.listen_on", "did you mean 'listen'"),
    (GOOD_HEAD + "[smpt]\nlisten = '127.0.0.1:25'\n", "smpt", "did you mean 'smtp'"),
    (GOOD_HEAD + "[smtp]\ncolour = 'blue'\n", "smtp.colour", "expected one of listen, lmtp"),
    (GOOD_HEAD + "[gateway.extra]\nx = 1\n", "gateway.extra", "unknown key"),
    (GOOD_HEAD + "[notifications]\nretry_max_seconds = 7200\n", "notifications.retry_max_seconds", "3600"),
    (GOOD_HEAD + "[notifications]\nmax_attempts = 'ten'\n", "notifications.max_attempts", "an integer"),
    (GOOD_HEAD + "[smtp\n", "config", "line 4, column 6"),
    (GOOD_HEAD + "[smtp]\nlisten = '127.0.0.1:25'\nlisten = '127.0.0.1:26'\n", "config", "line 6"),
]


@pytest.mark.parametrize(("text", "key", "words"), BROKEN, ids=[case[1] for case in BROKEN])
def test_each_error_names_its_key_and_the_problem(tmp_path: Path, text: str, key: str, words: str) -> None:
    found = problems(tmp_path, text)

    assert [error.key for error in found] == [key], found
    assert words.lower() in found[0].problem.lower(), found[0].problem


def test_wrong_type_says_what_was_expected_and_what_was_given(tmp_path: Path) -> None:
    (error,) = problems(tmp_path, GOOD_HEAD + "[smtp]\nlisten = 2525\n")
    assert str(error) == "smtp.listen: expected a string, got an integer (2525)"


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    (error,) = problems(tmp_path, GOOD_HEAD + "[outbound]\nrelai = 'dir:./out'\n")
    assert str(error) == "outbound.relai: unknown key; did you mean 'relay'?"


def test_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[gateway]\nsecret = "caf\xe9-caf\xe9-caf\xe9-caf\xe9"\n')
    (error,) = validate(path, NO_ENV)
    assert error.key == "config"
    assert "UTF-8" in error.problem


def test_all_errors_are_reported_together(tmp_path: Path) -> None:
    text = (
        "[gateway]\naddresses = ['nobody']\n"
        "[smtp]\nlisten = 'localhost:99999'\nmax_recipients = 0\n"
        "[[customers]]\nmatch = 'acme.example'\ntier = 'Platinum'\n"
        "[[imap]]\nhost = 'imap.example.com'\nusername = 'u'\npassword = 'p'\ntls = 'ssh'\n"
    )
    path = write(tmp_path, text)

    with pytest.raises(ConfigErrors) as raised:
        load_settings(path, NO_ENV)

    keys = [error.key for error in raised.value.errors]
    assert keys == [
        "gateway.addresses[0]",
        "gateway.secret",
        "smtp.listen",
        "smtp.max_recipients",
        "customers[0].tier",
        "imap[0].tls",
    ]
    assert [str(error) for error in validate(path, NO_ENV)] == [str(error) for error in raised.value.errors]
    # ConfigErrors is a ConfigError: code that catches one error still catches them all.
    assert isinstance(raised.value, ConfigError)
    assert raised.value.key == "gateway.addresses[0]"
    assert str(raised.value).splitlines()[1] == "gateway.secret: required — " + (
        "a long random string that keys reply-address tokens"
    )


def test_valid_config_validates_to_no_errors(tmp_path: Path) -> None:
    assert validate(EXAMPLE, NO_ENV) == []
    assert isinstance(load_settings(write(tmp_path, GOOD_HEAD), NO_ENV), Settings)


# --- several nodes: where blobs go, the node's name -----------------------------------------


@pytest.mark.parametrize(
    ("url", "storage", "expected"),
    [
        ("sqlite:///t.db", "", "dir"),
        ("postgresql+psycopg://u@h/db", "", "database"),
        ("postgresql+psycopg://u@h/db", '[storage]\nblob_dir = "/mnt/shared/blobs"\n', "dir"),
        ("postgresql+psycopg://u@h/db", '[storage]\nblobs = "dir"\n', "dir"),
        ("sqlite:///t.db", '[storage]\nblobs = "database"\n', "database"),
    ],
)
def test_blobs_go_to_the_database_by_default_with_postgresql(
    tmp_path: Path, url: str, storage: str, expected: str
) -> None:
    settings = load_settings(write(tmp_path, GOOD_HEAD + f'[database]\nurl = "{url}"\n' + storage), NO_ENV)
    assert settings.storage.blobs.value == expected


def test_the_database_url_from_the_environment_decides_the_blob_default(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_HEAD)
    settings = load_settings(path, {"TICKETGATE_DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert settings.storage.blobs.value == "database"


PG = "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("url", "processing", "key", "expected"),
    [
        ("sqlite:///t.db", "", "processes", 1),  # one writer at a time: a second would only wait
        (PG, "", "processes", default_processes(on_sqlite=False)),
        (PG, "processes = 1", "processes", 1),
        (PG, "processes = 0", "processes", 0),
        ("sqlite:///t.db", "processes = 3", "processes", 3),
        ("sqlite:///t.db", "", "nice", 0),  # a worker holds SQLite's one write lock: no priority inversion
        (PG, "", "nice", 5),
        (PG, "nice = 0", "nice", 0),
        ("sqlite:///t.db", "nice = 7", "nice", 7),
    ],
)
def test_worker_processes_and_their_priority_follow_the_database(
    tmp_path: Path, url: str, processing: str, key: str, expected: int
) -> None:
    text = GOOD_HEAD + f'[database]\nurl = "{url}"\n[processing]\n{processing}\n'
    assert getattr(load_settings(write(tmp_path, text), NO_ENV).processing, key) == expected


def test_the_database_url_from_the_environment_decides_the_processes_default(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, GOOD_HEAD), {"TICKETGATE_DATABASE_URL": "postgresql+psycopg://u@h/db"}
    )
    assert settings.processing.processes == default_processes(on_sqlite=False)


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 2), (4, 4), (64, MAX_DEFAULT_PROCESSES)])
def test_postgresql_gets_a_worker_process_per_core_up_to_the_cap(cores: int, expected: int) -> None:
    assert default_processes(on_sqlite=False, cores=cores) == expected
    assert default_processes(on_sqlite=True, cores=cores) == 1


@pytest.mark.parametrize(
    ("value", "expected"), [("20", "19 or less"), ("-1", "0 or more"), ('"low"', "integer")]
)
def test_a_bad_worker_priority_names_the_key(tmp_path: Path, value: str, expected: str) -> None:
    found = {
        error.key: error.problem
        for error in problems(tmp_path, GOOD_HEAD + f"[processing]\nnice = {value}\n")
    }
    assert set(found) == {"processing.nice"}
    assert expected in found["processing.nice"]


def test_blob_store_and_node_name_errors_name_the_key(tmp_path: Path) -> None:
    text = GOOD_HEAD.replace("[gateway]\n", '[gateway]\nnode_name = "gw 1/2"\n') + '[storage]\nblobs = "s3"\n'
    found = {error.key: error.problem for error in problems(tmp_path, text)}
    assert set(found) == {"gateway.node_name", "storage.blobs"}
    assert "database" in found["storage.blobs"] and "dir" in found["storage.blobs"]
    assert "gw 1/2" in found["gateway.node_name"]
    named = load_settings(
        write(tmp_path, GOOD_HEAD.replace("[gateway]\n", '[gateway]\nnode_name = "gw-1"\n')), NO_ENV
    )
    assert named.gateway.node_name == "gw-1"


def test_views_and_on_call_are_read_with_their_defaults(tmp_path: Path) -> None:
    settings = settings_from_mapping({"gateway": {"secret": "x" * 32}})
    assert settings.views.my_tickets_word == "tickets"
    assert settings.views.my_tickets_per_hour == 3
    assert settings.views.digest_at is None
    assert settings.views.timezone == "UTC"
    assert settings.staff.on_call is None
    assert settings.notifications.max_attached_bytes == 10 * 1024 * 1024

    given = settings_from_mapping(
        {
            "gateway": {"secret": "x" * 32},
            "staff": {"on_call": "oncall@smilepass.example"},
            "views": {"digest_at": "08:30", "timezone": "Europe/Oslo", "my_tickets_word": "My-Tickets"},
            "notifications": {"max_attached_bytes": 0},
        }
    )
    assert given.staff.on_call == "oncall@smilepass.example"
    assert str(given.views.digest_at) == "08:30:00"
    assert given.views.timezone == "Europe/Oslo"
    assert given.views.my_tickets_word == "my-tickets"
    assert given.notifications.max_attached_bytes == 0


def test_notifications_die_by_deadline_and_the_old_max_attempts_is_accepted_but_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPEC §15: time decides. A config written for the old count of tries still loads, and both
    `check-config` and `serve` say that the key is no longer read."""
    plain = settings_from_mapping({"gateway": {"secret": "x" * 32}})
    assert plain.notifications.deadline_hours == 48
    assert plain.notifications.retry_max_seconds == 3600
    assert plain.notifications.notices == ()
    assert not hasattr(plain.notifications, "max_attempts")

    old = write(tmp_path, GOOD_HEAD + "[notifications]\nmax_attempts = 10\ndeadline_hours = 24\n")
    from gateway.cli.main import main

    assert validate(old, NO_ENV) == []
    (notice,) = load_settings(old, environ=NO_ENV).notifications.notices
    assert "notifications.max_attempts" in notice and "deadline_hours (24)" in notice
    assert main(["check-config", "--config", str(old)]) == 0
    captured = capsys.readouterr()
    assert "config OK" in captured.out
    assert "note: notifications.max_attempts = 10 is no longer read" in captured.err


def test_bad_views_name_each_key() -> None:
    with pytest.raises(ConfigErrors) as caught:
        settings_from_mapping(
            {
                "gateway": {"secret": "x" * 32},
                "views": {"digest_at": "8 o'clock", "timezone": "Mars/Base", "my_tickets_word": "bounce-me"},
                "staff": {"on_call": "nobody"},
            }
        )
    keys = {error.key for error in caught.value.errors}
    assert {"views.digest_at", "views.timezone", "views.my_tickets_word", "staff.on_call"} <= keys


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_option_counts_before_and_after_the_command(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ticketgate --config F check-config` once fell back to the embedded defaults: the
    subcommand's parser overwrote the value with its own empty default."""
    from gateway.cli.main import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\nsecret = "%s"\n[views]\ntimezone = "Mars/Base"\n' % ("x" * 32))
    argv = (
        ["--config", str(bad), "check-config"]
        if where == "before"
        else ["check-config", "--config", str(bad)]
    )
    assert main(argv) == 78
    assert "views.timezone" in capsys.readouterr().err
