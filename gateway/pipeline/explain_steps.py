"""What each stage decided and why, in words, for `ticketgate explain` (pipeline/explain.py).

Pure: each describer reads the value a stage was given and what it gave back (the next value, or
its Decision); it decides nothing itself. A stage with no describer here (a stage added later) is
still listed, with its Decision's detail or "passed".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.mail.requester import find_requester
from gateway.mail.subject import parse_subject
from gateway.mail.tags import merge_tags, tags_from_addresses
from gateway.pipeline.new_ticket_plan import IntakeDefaults, recipient_addresses
from gateway.pipeline.routing_rules import Routing, route
from gateway.pipeline.stage_values import Classified, Decision, MailRun, Parsed, Threaded
from gateway.pipeline.thread import ThreadedBy


@dataclass(frozen=True)
class Step:
    """One stage: its name as in STAGES, what it decided, and why."""

    stage: str
    decision: str
    reason: str


def describe(name: str, given: Any, out: Any, run: MailRun) -> Step:
    if isinstance(out, Decision):
        extra = _DECIDED.get(name)
        more = extra(given, out, run) if extra is not None else ""
        return Step(name, out.outcome.value, "; ".join(part for part in (out.detail, more) if part))
    passed = _PASSED.get(name)
    decision, reason = passed(given, out, run) if passed is not None else ("passed", "")
    return Step(name, decision, reason)


# --- stages that let the mail go on -----------------------------------------------------------


def _parse_mail(_item: Any, out: Parsed, run: MailRun) -> tuple[str, str]:
    mail = out.mail
    found = find_requester(mail, run.item.envelope)
    where = f"the {found.source} header" if found.source not in ("", "envelope") else found.source
    requester = f"requester {found.address.address} from {where or 'nowhere'}"
    if found.reason:
        requester += f" ({found.reason})"
    parts = [
        f"Message-ID <{mail.message_id}>" if mail.message_id else "no Message-ID",
        f"subject {mail.subject!r}",
        requester,
        f"{len(mail.attachments)} attachment(s)",
    ]
    return "parsed", "; ".join(parts)


def _check_duplicate(_given: Parsed, out: Parsed, _run: MailRun) -> tuple[str, str]:
    if out.collision:
        return "not a duplicate", out.collision
    return "not a duplicate", "no earlier mail with this Message-ID and content"


def _check_spam(_given: Parsed, _out: Parsed, run: MailRun) -> tuple[str, str]:
    if run.item.released:
        return "not spam", "released with `inbox release`: a spam verdict does not apply"
    return "not spam", "no verdict of security.spam_headers in its own header section"


def _classify_mail(_given: Parsed, out: Classified, _run: MailRun) -> tuple[str, str]:
    classification = out.classification
    reason = classification.reason
    if classification.suppress_notifications:
        reason += "; so nothing will be sent in answer to it"
    return classification.kind.value, reason


def _my_tickets(_given: Classified, _out: Classified, run: MailRun) -> tuple[str, str]:
    word = run.deps.settings.views.my_tickets_word
    return "not a ticket-list request", f"not sent to the +{word} sub-address"


def _thread_mail(_given: Classified, out: Threaded, run: MailRun) -> tuple[str, str]:
    thread, prefix = out.thread, run.deps.settings.gateway.ticket_prefix
    if thread.ticket_id is not None:
        decision = f"joins {prefix}-{thread.ticket_id}"
        reason = f"by {_by(thread.threaded_by)}"
    else:
        decision = "opens a new ticket"
        reason = "no reply address, known In-Reply-To/References, or subject reference from a participant"
        if thread.follow_up_of is not None:
            reason = f"it answers {prefix}-{thread.follow_up_of}, which is Closed: a follow-up"
        elif thread.possible_follow_up_of is not None:
            reason += f"; it names {prefix}-{thread.possible_follow_up_of}: a possible follow-up"
    return decision, f"{reason}; {_staff(out)}"


def _by(how: ThreadedBy) -> str:
    return {
        ThreadedBy.REPLY_ADDRESS: "its reply address (support+REF.token@)",
        ThreadedBy.REFERENCES: "In-Reply-To/References naming a message of the ticket",
        ThreadedBy.SUBJECT_REF: "the reference in its subject, from someone on the ticket",
    }.get(how, how.value)


def _staff(mail: Threaded) -> str:
    auth, who = mail.staff, mail.sender.address
    if auth.is_staff:
        method = auth.method.value if auth.method is not None else ""
        return f"{who} is authenticated staff ({method})"
    if auth.staff_address:
        return f"{who} is a staff address but not authenticated: {auth.reason}"
    return f"{who} is not staff"


def _nothing(decision: str, reason: str = "") -> Callable[[Any, Any, MailRun], tuple[str, str]]:
    return lambda _given, _out, _run: (decision, reason)


def _apply_rules(_given: Threaded, out: Threaded, run: MailRun) -> tuple[str, str]:
    rules = run.deps.settings.rules
    routing = out.routing
    if not rules:
        return "no rules", "no [[rules]] configured"
    if not routing.fired:
        return "no rule fired", f"{len(rules)} rule(s) tried, none matched"
    parts = [f"{fired.name}: {', '.join(fired.because) or 'no match key'}" for fired in routing.fired]
    for action, value, by in (
        ("priority", routing.priority, routing.priority_by),
        ("category", routing.category, routing.category_by),
        ("assignee", routing.assign, routing.assign_by),
    ):
        if value is not None:
            parts.append(f"{action} {value} by rule {by!r}")
    if routing.silenced_by:
        parts.append(f"no acknowledgement: rule {routing.silenced_by!r}")
    if routing.dropped_by:
        parts.append(f"rule {routing.dropped_by!r} says drop, but the mail was released")
    return "fired: " + ", ".join(routing.names), "; ".join(parts)


def _dropped(given: Threaded, _out: Decision, run: MailRun) -> str:
    """Which rules fired on a dropped mail (the stage keeps only the name of the dropping one)."""
    routing = fired_rules(given, run)
    return "; ".join(f"{fired.name}: {', '.join(fired.because) or 'no match key'}" for fired in routing.fired)


def fired_rules(mail: Threaded, run: MailRun) -> Routing:
    """The rules that fire on `mail`, as apply_rules reads them (for a mail it dropped)."""
    return route(mail.mail, run.item.envelope, requester=mail.sender, rules=run.deps.settings.rules)


def _check_flood(_given: Threaded, out: Threaded, run: MailRun) -> tuple[str, str]:
    limit = run.deps.settings.limits.new_tickets_per_sender_per_hour
    if limit == 0:
        return "no limit", "limits.new_tickets_per_sender_per_hour = 0"
    if run.item.released:
        return "no limit", "released with `inbox release`: the limit does not apply"
    if out.staff.is_staff:
        return "no limit", "authenticated staff are not limited"
    return "under the limit", f"{out.sender.address} opened fewer than {limit} tickets in the hour before"


# --- stages that decide -----------------------------------------------------------------------


def _new_ticket(given: Threaded, _out: Decision, run: MailRun) -> str:
    """Where the new ticket's title, priority and category come from (the values are the ticket's)."""
    parsed, settings, deps = given.mail, run.deps.settings, run.deps
    removed: list[str] = []
    subject = parse_subject(
        parsed.subject,
        vocabulary=settings.tickets.vocabulary,
        ticket_prefix=settings.gateway.ticket_prefix,
        body=parsed.text,
        read_tags=True,
        removed=removed,
    )
    addressed = merge_tags(
        tags_from_addresses(
            recipient_addresses(parsed, run.item.envelope), deps.ours, settings.tickets.vocabulary
        )
    )
    defaults = deps.intake_defaults.get(run.item.envelope.source, IntakeDefaults())
    routing = given.routing
    priority = _source(
        (routing.priority, f"rule {routing.priority_by!r}"),
        (subject.priority, "subject tag"),
        (addressed.priority, "sub-address tag"),
        (defaults.priority, f"the defaults of {run.item.envelope.source}"),
        (settings.tickets.default_priority, "tickets.default_priority"),
    )
    category = _source(
        (routing.category, f"rule {routing.category_by!r}"),
        (subject.category, "subject tag"),
        (addressed.category, "sub-address tag"),
        (defaults.category, f"the defaults of {run.item.envelope.source}"),
        (settings.tickets.default_category, "tickets.default_category"),
    )
    title = f"title {subject.title!r} from subject {parsed.subject!r}"
    title += f" (removed {', '.join(removed)})" if removed else " (nothing removed)"
    parts = [title, priority, category]
    if routing.assign:
        parts.append(f"assigned to {routing.assign} by rule {routing.assign_by!r}")
    if given.classification.suppress_notifications:
        parts.append(f"no acknowledgement: {given.classification.reason}")
    elif routing.silenced_by:
        parts.append(f"no acknowledgement: rule {routing.silenced_by!r} says acknowledge = false")
    return "; ".join(parts)


def _source(*candidates: tuple[object, str]) -> str:
    for value, source in candidates:
        if value:
            return f"{value} ({source})"
    return ""


def _reply(given: Threaded, _out: Decision, run: MailRun) -> str:
    return f"threaded by {_by(given.thread.threaded_by)}; {_staff(given)}"


_PASSED: dict[str, Callable[[Any, Any, MailRun], tuple[str, str]]] = {
    "parse_mail": _parse_mail,
    "check_duplicate": _check_duplicate,
    "check_spam": _check_spam,
    "classify_mail": _classify_mail,
    "my_tickets": _my_tickets,
    "thread_mail": _thread_mail,
    "record_auto_reply": _nothing("not an auto-reply"),
    "add_reply": _nothing("joins no ticket"),
    "staff_queue": _nothing("not a #queue request"),
    "apply_rules": _apply_rules,
    "read_form": _nothing("not a form's mail", "From is no [[forms]] sender (or forms are not configured)"),
    "open_forward": _nothing("not a staff forward", "not a forward from authenticated staff"),
    "check_flood": _check_flood,
    "check_forged_sender": _nothing(
        "no forgery verdict",
        "no trusted Authentication-Results says dmarc=fail under a reject or quarantine policy",
    ),
}

_DECIDED: dict[str, Callable[[Any, Decision, MailRun], str]] = {
    "open_ticket": _new_ticket,
    "check_forged_sender": _new_ticket,
    "add_reply": _reply,
    "apply_rules": _dropped,
}
