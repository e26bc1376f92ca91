"""What processing a mail changed: the happenings now live in gateway/domain.py (notify reads them
and must not import the pipeline). This module keeps the old import path working for the modules
that still use it."""

from gateway.domain import BounceReceived, CommandResult, Happening, ReplyAdded, StatusChanged, TicketOpened

__all__ = ["BounceReceived", "CommandResult", "Happening", "ReplyAdded", "StatusChanged", "TicketOpened"]
