"""Stage staff_queue: authenticated staff who send `#queue` (or `#queue mine`) alone to a plain
gateway address get the queue in a receipt, and no ticket is opened (SPEC §12;
docs/staff/commands-by-mail.md).

On a ticket, `#queue` is one more command of the reply (the reply stage); this stage takes the mail
that joined no ticket and holds nothing but `#queue` lines. Anything else, and anything from a
sender who is not authenticated staff, goes on to open a ticket as before: a customer's `#queue` is
text, and learns nothing of the queue.
"""

from __future__ import annotations

from gateway.domain import QueueRequested
from gateway.mail.quotes import trim_reply
from gateway.pipeline.commands import Field, parse_commands
from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Threaded


def staff_queue(mail: Threaded, run: MailRun) -> Threaded | Decision:
    """Outcome `queue`: the receipt with the open queue goes to the staff sender; no ticket."""
    if not mail.staff.is_staff or mail.thread.ticket_id is not None:
        return mail
    parsed, sender = mail.mail, mail.sender
    tickets = run.deps.settings.tickets
    block = parse_commands(
        trim_reply(parsed.text, html=parsed.html).text,
        vocabulary=tickets.vocabulary,
        categories=tickets.categories,
    )
    if not block.commands or block.text.strip() or any(c.field is not Field.QUEUE for c in block.commands):
        return mail
    scope = block.commands[-1].value or "all"
    asked = f"#queue {scope}" if scope == "mine" else "#queue"
    if mail.classification.suppress_notifications:
        detail = f"{asked} from {sender.address}, not answered: {mail.classification.reason}"
        return Decision(Outcome.QUEUE, None, detail)
    request = QueueRequested(
        inbox_id=run.item.id, staff=sender, scope=scope, lines=block.lines, message_id=parsed.message_id
    )
    return Decision(Outcome.QUEUE, None, f"{asked} for {sender.address}", (request,))
