"""The settings a command runs with: the config file (`--config`, `TICKETGATE_CONFIG`,
./ticketgate.toml) read, and the log format it names applied; and `check-config`, which needs
nothing more (no SQLAlchemy)."""

from __future__ import annotations

import argparse
import sys

from gateway.config import Settings, load_settings
from gateway.ops.logs import configure as configure_logging


def settings_for(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    configure_logging(settings.logging.format)
    return settings


def check_config(args: argparse.Namespace) -> int:
    from gateway.config.sections.rules import rule_warnings

    settings = settings_for(args)
    for key, warning in rule_warnings(settings.rules):  # allowed, but rarely what was meant
        print(f"ticketgate: config warning: {key}: {warning}", file=sys.stderr)
    where = settings.source or "embedded defaults (no config file found)"
    for notice in settings.notifications.notices:
        print(f"ticketgate: note: {notice}", file=sys.stderr)
    print(f"config OK: {where}")
    return 0
