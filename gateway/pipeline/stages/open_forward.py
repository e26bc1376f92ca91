"""Stage open_forward: authenticated staff who forward a customer's mail to a gateway address open the
ticket for that customer (SPEC §13 "Staff forwards"; the forward is read by gateway/mail/forward.py).

- The ticket is the original's: requester its From, title its subject (prefixes and tags read as on
  any new mail), description its body, screenshots its images; the customer is the author of its
  first message, which carries the original's Message-ID when it was attached whole.
- The staff member's own text above the forward is an internal note on it; the commands at its top
  apply with staff rights (`#assign me`, `#urgent`, `#billing` …) and come back in a receipt, as on
  any staff mail. The note does not move the status by itself (the forward opens the ticket, nobody
  has worked it yet): only a status command does.
- The customer is acknowledged only when the staff text says `#ack` (a command line of its own);
  triage is told of the new ticket as always. An event (`forwarded`, actor the staff member) says
  who opened it and how the forward was written.
- A forward whose original sender cannot be read (no address in its From, or one of the gateway's
  own), and a forward from a staff address that is not authenticated, open an ordinary ticket from
  their sender, with a `forward_not_read` event saying why. Anyone else's forward is an ordinary mail.
"""

from __future__ import annotations

import dataclasses
import re

from gateway.domain import Address, EventKind, ParsedMail, Visibility
from gateway.mail.forward import ATTACHED, Forward, read_forward
from gateway.mail.quotes import trim_reply
from gateway.pipeline.commands import CommandBlock, parse_commands
from gateway.pipeline.new_ticket_plan import IntakeDefaults, plan_new_ticket
from gateway.pipeline.reply_plan import plan_commands
from gateway.pipeline.stage_values import Decision, MailRun, Threaded
from gateway.pipeline.stages.open_ticket import open_new_ticket, open_planned_ticket
from gateway.pipeline.writes.apply_reply import apply_reply, lock_ticket
from gateway.pipeline.writes.copies_merges import copy_refusal, merge_targets

ACK = re.compile(r"#ack(?:nowledge)?[.,;!]*", re.IGNORECASE)
_COMMAND = re.compile(r"#[A-Za-z][\w-]*(?:[ \t].*)?")


def split_ack(text: str) -> tuple[bool, str]:
    """Whether the command lines at the top of `text` hold `#ack`, and `text` without that line.

    Command lines are read as pipeline/commands.py reads them (the lines at the top, blank lines
    between them allowed); `#ack` is taken out here, so the command parser never sees (and refuses)
    a command that belongs to the forward, not to the ticket."""
    lines = text.splitlines()
    ack = False
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            kept.append(line)
            continue
        if ACK.fullmatch(stripped):
            ack = True
            continue
        if not _COMMAND.fullmatch(stripped):
            kept.extend(lines[index:])
            break
        kept.append(line)
    return ack, "\n".join(kept).strip("\n")


def open_forward(mail: Threaded, run: MailRun) -> Threaded | Decision:
    """Outcome `ticket`: the customer's ticket; any other mail goes on unchanged."""
    if mail.thread.ticket_id is not None or not mail.staff.staff_address:
        return mail
    forward = read_forward(mail.mail)
    if forward is None:
        return mail
    staff = mail.sender.address
    if not mail.staff.is_staff:
        why = f"a forward from {staff}, read as an ordinary mail: {mail.staff.reason}"
        return _ordinary(mail, run, why)
    customer = forward.sender
    if customer is None:
        why = (
            f"{staff} forwarded a mail whose sender cannot be read ({forward.problem}); the ticket is theirs"
        )
        return _ordinary(mail, run, why)
    if run.deps.ours.is_ours(customer.address):
        why = f"{staff} forwarded a mail from {customer.address}, one of the gateway's own addresses"
        return _ordinary(mail, run, why)
    return _open_for_customer(mail, run, forward, customer)


def _ordinary(mail: Threaded, run: MailRun, why: str) -> Decision:
    event = (EventKind.FORWARD_NOT_READ, "ticketgate", "forward", why)
    return open_new_ticket(mail, run, more_events=(event,))[1]


def _open_for_customer(mail: Threaded, run: MailRun, forward: Forward, customer: Address) -> Decision:
    parsed, item, deps = mail.mail, run.item, run.deps
    settings = deps.settings
    staff = mail.sender
    ack, note = split_ack(trim_reply(forward.note).text)
    original = _as_delivered(forward, parsed)
    defaults = deps.intake_defaults.get(item.envelope.source, IntakeDefaults())
    plan = plan_new_ticket(original, item.envelope, settings=settings, ours=deps.ours, defaults=defaults)
    how = "attached whole" if forward.style == ATTACHED else f"inline under {forward.style!r}"
    opened_by = f"opened by {staff.address}, forwarding a mail from {customer.address} ({how})"
    acknowledge = ack and not mail.classification.suppress_notifications
    why_not = ""
    if not ack:
        why_not = (
            f"opened from a forward by {staff.address}: the customer is acknowledged only when the staff "
            "text says #ack"
        )
    ticket_id, opened = open_planned_ticket(
        dataclasses.replace(mail, mail=original, sender=customer),
        run,
        plan,
        more_events=((EventKind.FORWARDED, staff.address, "requester", opened_by),),
        acknowledge=acknowledge,
        not_acknowledged_because=why_not,
    )
    happenings = list(opened.happenings)
    tickets = settings.tickets
    block = parse_commands(note, vocabulary=tickets.vocabulary, categories=tickets.categories)
    if block.commands or block.text.strip():
        ticket, state = lock_ticket(run.session, ticket_id)
        # Planned as a mail of commands alone (no implicit status change), then kept as the note.
        planned = plan_commands(
            state,
            CommandBlock(block.commands, ""),
            sender=staff.address,
            staff=mail.staff,
            staff_addresses=settings.staff.addresses,
            staff_reply_status=tickets.staff_reply_status,
            merge_targets=merge_targets(
                run.session, block, ticket_id=ticket_id, prefix=settings.gateway.ticket_prefix
            ),
            refuse_copy=copy_refusal(ticket, settings, run.deps.ours),
        )
        planned = dataclasses.replace(planned, text=block.text.strip(), visibility=Visibility.INTERNAL)
        applied = apply_reply(
            run.session,
            ticket,
            planned,
            author=staff,
            staff=mail.staff,
            inbox_id=item.id,
            message_id=parsed.message_id,
            subject=parsed.subject,
            threaded_by="new",
            notify=not mail.classification.suppress_notifications,
            settings=settings,
            ours=run.deps.ours,
        )
        happenings.extend(applied.happenings)
    detail = f"new ticket {ticket_id} for {customer.address}, {opened_by}"
    return dataclasses.replace(opened, detail=detail, happenings=tuple(happenings))


def _as_delivered(forward: Forward, outer: ParsedMail) -> ParsedMail:
    """The original, as the ticket's first message: its own From, subject, body and images, the
    forwarding mail's recipients (a forward to `support+billing@` is tagged as such), and a
    Message-ID (its own when it came attached, else the forward's) so that the ticket has one."""
    original = forward.original
    return dataclasses.replace(
        original,
        message_id=original.message_id or outer.message_id,
        to=outer.to,
        cc=outer.cc,
        delivered_to=outer.delivered_to,
        attachments=(*original.attachments, *forward.leftover),
    )
