"""The exceptions ticketgate raises on purpose, each mapping to what a sender or operator sees."""

from __future__ import annotations


class TicketgateError(Exception):
    """Base of every deliberate ticketgate error."""


class ConfigError(TicketgateError):
    """A configuration value is missing or wrong; names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class TransientError(TicketgateError):
    """A fault that may pass (database down, disk full): the sender must retry later (451, exit 75)."""


class NotAMailError(TicketgateError):
    """Input that is not an e-mail message at all (empty, no header section): exit 65."""


class ProcessingError(TicketgateError):
    """A mail could not be turned into a ticket; it goes to quarantine with this reason."""


class SchemaOutOfDate(TicketgateError):
    """The database was made by another version of ticketgate: `ticketgate db upgrade` first."""
