"""Stage record_auto_reply: an auto-reply is recorded on the ticket it answers, and changes nothing."""

from __future__ import annotations

from gateway.domain import Role, Visibility
from gateway.mail.quotes import trim_reply
from gateway.pipeline.classify import MailKind
from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Threaded
from gateway.store import tickets as store
from gateway.store.models import Ticket


def record_auto_reply(mail: Threaded, run: MailRun) -> Threaded | Decision:
    """An out-of-office joins its ticket as a record, or is recorded without one; nothing changes."""
    if mail.classification.kind is not MailKind.AUTO_REPLY:
        return mail
    parsed, thread, author = mail.mail, mail.thread, mail.sender
    # It joins the ticket it answers even when that one is Closed: it changes nothing there.
    answered = thread.answered
    ticket = run.session.get(Ticket, answered) if answered is not None else None
    threaded_by = thread.threaded_by if thread.ticket_id is not None else thread.link_by
    store.add_message(
        run.session,
        ticket_id=ticket.id if ticket else None,
        inbox_id=run.item.id,
        message_id=parsed.message_id,
        kind="auto_reply",
        author_address=author.address,
        author_name=author.name,
        role=Role.REQUESTER if ticket and _same(author.address, ticket.requester_address) else Role.CC,
        visibility=Visibility.INTERNAL,
        subject=parsed.subject,
        text=trim_reply(parsed.text, html=parsed.html).text,
        threaded_by=threaded_by.value if ticket and threaded_by else "new",
    )
    where = f"on ticket {ticket.id}" if ticket else "without a ticket"
    return Decision(Outcome.AUTO_REPLY, ticket.id if ticket else None, f"recorded {where}")


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()
