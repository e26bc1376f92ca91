"""Stage add_reply: a mail that threaded onto a ticket joins its conversation; its commands and the
lifecycle apply (the plan is pipeline/reply_plan.py, the writes pipeline/writes/apply_reply.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway.domain import SortedAttachments
from gateway.mail.quotes import trim_reply
from gateway.pipeline.commands import parse_commands
from gateway.pipeline.happenings import Happening, ReplyAdded
from gateway.pipeline.reply_plan import plan_commands
from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Threaded
from gateway.pipeline.writes.apply_reply import apply_reply, lock_ticket
from gateway.pipeline.writes.collision import record_collision
from gateway.pipeline.writes.copies_merges import copy_refusal, merge_targets
from gateway.pipeline.writes.files import store_files


def add_reply(mail: Threaded, run: MailRun) -> Threaded | Decision:
    """A mail that threaded onto a ticket joins its conversation; its commands and the lifecycle apply."""
    thread = mail.thread
    if thread.ticket_id is None:
        return mail
    parsed, settings = mail.mail, run.deps.settings
    ticket, before = lock_ticket(run.session, thread.ticket_id)
    block = parse_commands(
        trim_reply(parsed.text, html=parsed.html).text,
        vocabulary=settings.tickets.vocabulary,
        categories=settings.tickets.categories,
    )
    prefix = settings.gateway.ticket_prefix
    plan = plan_commands(
        before,
        block,
        sender=mail.sender.address,
        staff=mail.staff,
        staff_addresses=settings.staff.addresses,
        staff_reply_status=settings.tickets.staff_reply_status,
        merge_targets=merge_targets(run.session, block, ticket_id=ticket.id, prefix=prefix),
        refuse_copy=copy_refusal(ticket, settings, run.deps.ours),
    )
    applied = apply_reply(
        run.session,
        ticket,
        plan,
        author=mail.sender,
        staff=mail.staff,
        inbox_id=run.item.id,
        message_id=parsed.message_id,
        subject=parsed.subject,
        threaded_by=thread.threaded_by.value,
        notify=not mail.classification.suppress_notifications,
        settings=settings,
        ours=run.deps.ours,
        mail=parsed,
    )
    record_collision(run, mail, ticket_id=ticket.id)
    files = store_files(run, mail, sender=mail.sender, ticket_id=ticket.id, message_db_id=applied.message.id)
    detail = f"{plan.role} reply on ticket {ticket.id} ({thread.threaded_by.value})"
    return Decision(Outcome.REPLY, ticket.id, detail, _with_files_known(applied.happenings, files))


def _with_files_known(happenings: Sequence[Happening], files: SortedAttachments) -> tuple[Happening, ...]:
    """The reply's happening says whether its message has files, so the staff notification about it
    reads them back only when there are some (store_files runs after apply_reply made it)."""
    has_files = bool(files.screenshots or files.attachments)
    return tuple(
        dataclasses.replace(each, has_files=has_files) if isinstance(each, ReplyAdded) else each
        for each in happenings
    )
