"""How the daemon runs: `[limits]`, `[security]`, `[processing]`, `[notifications]`,
`[metrics]` and `[logging]`.
"""

from __future__ import annotations

import os
import re

from gateway.config.endpoints import parse_listen
from gateway.config.reader import Table
from gateway.config.settings import (
    DEFAULT_SPAM_HEADERS,
    MIB,
    ControlSettings,
    LimitSettings,
    LoggingSettings,
    MetricsSettings,
    NotificationSettings,
    ProcessingSettings,
    SecuritySettings,
)

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but the colon


def read_limits(t: Table) -> LimitSettings:
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


def read_security(t: Table) -> SecuritySettings:
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


MAX_DEFAULT_PROCESSES = 4  # what `processing.processes` defaults to on PostgreSQL at most
DEFAULT_WORKER_NICE = 5  # on PostgreSQL, worker processes yield the cores to serve's intake
MAX_NICE = 19  # the lowest CPU priority there is


def read_processing(t: Table) -> ProcessingSettings:
    """`[processing]`; when `processes` is absent the loader sets it by the database once that is
    known (`default_processes`)."""
    settings = ProcessingSettings(
        workers=t.integer("workers", 1),
        max_attempts=t.integer("max_attempts", 5),
        retry_base_seconds=t.seconds("retry_base_seconds", 30.0),
        processes=t.integer("processes", 1, minimum=0),
        imap_reconcile_minutes=t.integer("imap_reconcile_minutes", 10, minimum=0),
        processes_given="processes" in t.data,
        nice=t.integer("nice", DEFAULT_WORKER_NICE, minimum=0),
        nice_given="nice" in t.data,
    )
    if settings.nice > MAX_NICE:
        t.problem("nice", f"must be {MAX_NICE} or less, got {settings.nice}")
    t.finish()
    return settings


def default_nice(*, on_sqlite: bool) -> int:
    """The worker processes' priority below `serve` when the config names none: 0 on SQLite, whose
    one write lock a worker holds through its batch (preempted while holding it, it would keep
    intake waiting: priority inversion), DEFAULT_WORKER_NICE on PostgreSQL, which has no such lock
    (docs/performance/throughput.md has both measured)."""
    return 0 if on_sqlite else DEFAULT_WORKER_NICE


def default_processes(*, on_sqlite: bool, cores: int | None = None) -> int:
    """Worker processes when the config names none: one on SQLite (one writer at a time, so a second
    process only waits), one per core this process may run on, up to MAX_DEFAULT_PROCESSES, on
    PostgreSQL, whose processors claim with SKIP LOCKED and each wait much of a mail for the
    database's answers (docs/admin/configuration.md has the measurements)."""
    if on_sqlite:
        return 1
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_PROCESSES))


def read_metrics(t: Table) -> MetricsSettings:
    listen = t.optional_text("listen")
    address: tuple[str, int] | None = None
    if listen is not None:
        try:
            address = parse_listen(listen)
        except ValueError as exc:
            t.problem("listen", str(exc))
    t.finish()
    return MetricsSettings(listen=address)


def read_control(t: Table) -> ControlSettings:
    # Absent: on, at the default path; "" turns it off (gateway/control_socket.py).
    socket = t.optional_text("socket", empty_allowed=True)
    t.finish()
    return ControlSettings(socket=socket)


def read_logging(t: Table) -> LoggingSettings:
    chosen = t.text("format", "text").strip().lower()
    if chosen not in ("text", "json"):
        t.problem("format", f'expected "text" or "json", got {chosen!r}')
        chosen = "text"
    t.finish()
    return LoggingSettings(format="json" if chosen == "json" else "text")


# The back-off between two tries of a notification never exceeds an hour (SPEC §15).
MAX_RETRY_SECONDS = 3600.0


def read_notifications(t: Table) -> NotificationSettings:
    defaults = NotificationSettings()
    # Before SPEC §15 a count of tries killed a notification (10, ~3 hours). Configs that copied the
    # example still name it: accepted (a config that loaded keeps loading), no longer read.
    ignored = t.integer("max_attempts", 0, minimum=0) if t.has("max_attempts") else None
    retry_max = t.seconds("retry_max_seconds", defaults.retry_max_seconds)
    if retry_max > MAX_RETRY_SECONDS:
        t.problem("retry_max_seconds", f"must be {MAX_RETRY_SECONDS:g} or less (an hour), got {retry_max:g}")
        retry_max = MAX_RETRY_SECONDS
    settings = NotificationSettings(
        templates_dir=t.optional_text("templates_dir"),
        ignored_max_attempts=ignored,
        retry_base_seconds=t.seconds("retry_base_seconds", defaults.retry_base_seconds),
        retry_max_seconds=retry_max,
        deadline_hours=t.seconds("deadline_hours", defaults.deadline_hours),
        max_attached_bytes=t.integer("max_attached_bytes", defaults.max_attached_bytes, minimum=0),
        copy_participants=t.boolean("copy_participants", defaults.copy_participants),
        poll_seconds=t.seconds("poll_seconds", defaults.poll_seconds),
    )
    t.finish()
    return settings
