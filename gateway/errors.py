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


class CannotListen(TicketgateError):
    """`serve` cannot open a listener its config names (the port taken, no permission, no such
    address): one line naming the key, exit 71, instead of a traceback."""

    def __init__(self, key: str, host: str, port: int, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        if "address already in use" in str(exc).lower():
            reason = "address already in use (another serve, or another program, has it)"
        super().__init__(f"cannot listen on {host}:{port} ({key}): {reason.lower()}")


class SchemaOutOfDate(TicketgateError):
    """The database was made by another version of ticketgate: `ticketgate db upgrade` first."""
