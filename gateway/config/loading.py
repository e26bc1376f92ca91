"""Which file to read and how: the entry points, and `build`, which reads every section in order.

The order of the section readers is the order problems are reported in; cross-section checks
(staff and outbound against gateway.addresses, imap against tickets.categories) take the
sections they need as arguments.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.config.reader import ConfigErrors, Problems, Table, finished
from gateway.config.sections.forms import read_forms
from gateway.config.sections.gateway import read_database, read_gateway
from gateway.config.sections.mail import read_imap, read_outbound, read_smtp
from gateway.config.sections.operations import (
    default_nice,
    default_processes,
    read_control,
    read_limits,
    read_logging,
    read_metrics,
    read_notifications,
    read_processing,
    read_security,
)
from gateway.config.sections.people import read_customers, read_staff
from gateway.config.sections.rules import read_rules
from gateway.config.sections.tickets import read_response_targets, read_tickets, read_views
from gateway.config.settings import BlobStoreKind, DatabaseSettings, Settings, StorageSettings
from gateway.config.validators import database_url_problem
from gateway.errors import ConfigError

CONFIG_ENV = "TICKETGATE_CONFIG"
DATABASE_URL_ENV = "TICKETGATE_DATABASE_URL"
DEFAULT_CONFIG_FILE = "ticketgate.toml"


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


def _build(
    data: Mapping[str, Any], *, source: Path | None, environ: Mapping[str, str], embedded: bool
) -> Settings:
    problems = Problems()
    root = Table(data, "", problems)

    gateway = read_gateway(root.table("gateway"), embedded=embedded)
    database = read_database(root.table("database"))
    smtp = read_smtp(root.table("smtp"))
    outbound = read_outbound(root.table("outbound"), gateway)
    staff = read_staff(root.table("staff"), gateway)
    tickets = read_tickets(root.table("tickets"), root)
    customers = read_customers(root.tables("customers"))
    limits = read_limits(root.table("limits"))
    storage_table = root.table("storage")
    blob_dir = storage_table.text("blob_dir", "./blobs")
    blob_dir_given = storage_table.has("blob_dir")
    blobs_kind = finished(storage_table, lambda t: t.optional_choice("blobs", BlobStoreKind))
    processing = read_processing(root.table("processing"))
    imap = read_imap(root.tables("imap"), tickets)
    notifications = read_notifications(root.table("notifications"))
    metrics = read_metrics(root.table("metrics"))
    control = read_control(root.table("control"))
    logging_settings = read_logging(root.table("logging"))
    security = read_security(root.table("security"))
    response_targets = read_response_targets(root.table("response_targets"))
    views = read_views(root.table("views"))
    rules = read_rules(root.tables("rules"), tickets, staff)
    forms = read_forms(root.tables("forms"), gateway, staff)
    root.finish()

    override = environ.get(DATABASE_URL_ENV, "").strip()
    if override:
        problem = database_url_problem(override)
        if problem:
            problems.add(DATABASE_URL_ENV, problem)
        database = DatabaseSettings(url=override, reply_timeout=database.reply_timeout)
    on_sqlite = database.url.lower().startswith("sqlite")
    if blobs_kind is None:
        blobs_kind = BlobStoreKind.DIR if on_sqlite or blob_dir_given else BlobStoreKind.DATABASE
    if not processing.processes_given:
        processing = dataclasses.replace(processing, processes=default_processes(on_sqlite=on_sqlite))
    if not processing.nice_given:
        processing = dataclasses.replace(processing, nice=default_nice(on_sqlite=on_sqlite))
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
        control=control,
        logging=logging_settings,
        security=security,
        response_targets=response_targets,
        views=views,
        rules=rules,
        forms=forms,
    )
