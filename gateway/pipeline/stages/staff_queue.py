"""Stage: authenticated staff who send `#queue` (or `#queue mine`) alone to a plain gateway address
get the queue in a receipt, and no ticket is opened (SPEC §12; README "Commands by mail").

On a ticket, `#queue` is one more command of the reply (the reply stage); this stage takes the mail
that joined no ticket and holds nothing but `#queue` lines. Anything else, and anything from a
sender who is not authenticated staff, goes on to open a ticket as before: a customer's `#queue` is
text, and learns nothing of the queue.
"""

from __future__ import annotations

from gateway.domain import QueueRequested
from gateway.pipeline.commands import Field, parse_commands
from gateway.pipeline.quotes import trim_reply
from gateway.pipeline.stages.context import (
    MailContext,
    Outcome,
    ProcessorDeps,
    ProcessResult,
)


def staff_queue_stage(ctx: MailContext, deps: ProcessorDeps) -> ProcessResult | None:
    """Outcome `queue`: the receipt with the open queue goes to the staff sender; no ticket."""
    if not ctx.staff.is_staff or (ctx.thread is not None and ctx.thread.ticket_id is not None):
        return None
    assert ctx.sender is not None and ctx.classification is not None
    mail = ctx.parsed
    tickets = deps.settings.tickets
    block = parse_commands(
        trim_reply(mail.text, html=mail.html).text,
        vocabulary=tickets.vocabulary,
        categories=tickets.categories,
    )
    if not block.commands or block.text.strip() or any(c.field is not Field.QUEUE for c in block.commands):
        return None
    scope = block.commands[-1].value or "all"
    asked = f"#queue {scope}" if scope == "mine" else "#queue"
    if ctx.classification.suppress_notifications:
        detail = f"{asked} from {ctx.sender.address}, not answered: {ctx.classification.reason}"
        return ProcessResult(ctx.item.id, Outcome.QUEUE, None, detail)
    ctx.happenings.append(
        QueueRequested(
            inbox_id=ctx.item.id,
            staff=ctx.sender,
            scope=scope,
            lines=block.lines,
            message_id=mail.message_id,
        )
    )
    return ProcessResult(ctx.item.id, Outcome.QUEUE, None, f"{asked} for {ctx.sender.address}")
