"""Log output: readable lines by default, or one JSON object per line (`logging.format = "json"`)
for collectors (journald forwarders, Loki, Elasticsearch) that should not have to parse prose.

JSON lines carry `time` (ISO 8601, UTC), `level`, `logger`, `message` and, on the lines about one
mail, the fields `mail_fields` gives the log call as `extra=`: `inbox_id`, `message_id`, `ticket`
(the reference) and `outcome`. python-json-logger does the formatting: it copies every `extra=`
field, serialises what json cannot (datetimes, exceptions with their traceback) and is maintained;
a formatter of our own would be twenty lines that grow each of those cases back, one bug at a time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.domain import ParsedMail, ProcessResult

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def configure(log_format: str) -> None:
    """Switch every handler of the root logger to `log_format` ("text" leaves them as they are)."""
    if log_format != "json":
        return
    formatter = json_formatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


def mail_fields(
    inbox_id: int, mail: ParsedMail | None, result: ProcessResult | None, ticket_prefix: str
) -> dict[str, Any]:
    """The `extra=` of a log line about one mail: what an operator searches the logs by."""
    ticket_id = result.ticket_id if result is not None else None
    return {
        "inbox_id": inbox_id,
        "message_id": mail.message_id if mail is not None else None,
        "ticket": f"{ticket_prefix}-{ticket_id}" if ticket_id is not None else None,
        "outcome": str(result.outcome) if result is not None else None,
    }
