"""The settings a command runs with: the config file (`--config`, `TICKETGATE_CONFIG`,
./ticketgate.toml) read, and the log format it names applied."""

from __future__ import annotations

import argparse

from gateway.config import Settings, load_settings
from gateway.ops.logs import configure as configure_logging


def settings_for(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    configure_logging(settings.logging.format)
    return settings
