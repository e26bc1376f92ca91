"""Stage read_form: a new mail from a `[[forms]]` sender opens the ticket of the visitor who filled in
the form (SPEC §13 "Web forms"; what it says is gateway/pipeline/form_plan.py).

Only an authenticated form mail is read (DKIM or a trusted Authentication-Results for its From
domain, as staff mail is: gateway/pipeline/sender_auth.py), unless the form says
`require_authentication = false`: otherwise anybody could write `From: forms@…` with any Reply-To
and have ticketgate mail its acknowledgement, and a ticket in the victim's name, to whomever they
like. A form sender that is not authenticated opens an ordinary ticket from its From, with the
event saying why and no acknowledgement (the form's own address is never answered).

The visitor is held to the new-ticket limit of SPEC §11 (`limits.new_tickets_per_sender_per_hour`)
as any sender is: the form's own address, which sends for every visitor, is not.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.domain import EventKind
from gateway.pipeline.form_plan import plan_form_ticket
from gateway.pipeline.new_ticket_plan import IntakeDefaults, plan_new_ticket
from gateway.pipeline.sender_auth import from_domain_problem
from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Threaded
from gateway.pipeline.stages.open_ticket import open_new_ticket, open_planned_ticket
from gateway.store.limits import hold_senders, tickets_opened_by

WINDOW = timedelta(hours=1)


def read_form(mail: Threaded, run: MailRun) -> Threaded | Decision:
    """Outcome `ticket`: the visitor's ticket; mail from no form sender goes on unchanged."""
    parsed, item, deps = mail.mail, run.item, run.deps
    settings = deps.settings
    if mail.thread.ticket_id is not None or parsed.sender is None or not settings.forms:
        return mail
    form = settings.form_for(parsed.sender.address)
    if form is None:
        return mail
    if form.require_authentication:
        problem = from_domain_problem(
            item.raw, address=parsed.sender.address, trusted=settings.staff.trusted_authserv_ids,
            dnsfunc=deps.dkim_dns,
        )  # fmt: skip
        if problem is not None:
            why = f"not read as the form of {form.sender}: {problem}"
            never = f"{form.sender} is a form's sender, which is never acknowledged"
            return open_new_ticket(
                mail,
                run,
                more_events=((EventKind.FORM_NOT_READ, "ticketgate", "form", why),),
                acknowledge=False,
                not_acknowledged_because=never,
            )[1]
    defaults = deps.intake_defaults.get(item.envelope.source, IntakeDefaults())
    base = plan_new_ticket(parsed, item.envelope, settings=settings, ours=deps.ours, defaults=defaults)
    planned = plan_form_ticket(
        parsed,
        form,
        base,
        vocabulary=settings.tickets.vocabulary,
        categories=settings.tickets.categories,
        ours=deps.ours,
        customers=settings.customers,
    )
    visitor = planned.visitor
    limit = settings.limits.new_tickets_per_sender_per_hour
    if visitor is not None and limit and not item.released:
        hold_senders(run.session, [visitor.address])  # counted and opened as one step (store/limits.py)
        opened = tickets_opened_by(run.session, visitor.address, at=item.received_at, window=WINDOW)
        if opened.count >= limit:
            detail = (
                f"{visitor.address} (by the form of {form.sender}) opened {opened.count} tickets "
                f"{opened.words()} (limit {limit})"
            )
            return Decision(Outcome.FLOOD, None, detail)
    acknowledge = visitor is not None and not mail.classification.suppress_notifications
    why_not = ""
    if visitor is None:
        why_not = f"the form mail names no visitor address, and {form.sender} is never acknowledged"
    ticket_id, decision = open_planned_ticket(
        mail, run, planned.plan, more_events=planned.events, acknowledge=acknowledge,
        not_acknowledged_because=why_not,
    )  # fmt: skip
    who = visitor.address if visitor is not None else "an unknown visitor"
    return Decision(
        decision.outcome, ticket_id, f"new ticket {ticket_id} from the form of {form.sender} for {who}",
        decision.happenings,
    )  # fmt: skip
