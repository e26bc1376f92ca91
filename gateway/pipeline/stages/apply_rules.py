"""Stage apply_rules: the administrator's `[[rules]]` on a mail that opens a ticket (SPEC §14).

It runs once threading has found no ticket to join (replies are never routed), before the flood
limit and the forged-sender check, so a rule's drop settles the mail first and its priority,
category, assignee and silence reach the ticket whichever stage opens it. What the rules decide
is pipeline/routing_rules.py; the ticket is written by open_ticket.
"""

from __future__ import annotations

import dataclasses

from gateway.pipeline.routing_rules import route
from gateway.pipeline.stage_values import Decision, MailRun, Outcome, Threaded


def apply_rules(mail: Threaded, run: MailRun) -> Threaded | Decision:
    """Outcome `dropped` when a rule says drop = true (stored, no ticket, no acknowledgement,
    releasable); otherwise the mail goes on with what the rules that fired decided."""
    rules = run.deps.settings.rules
    if not rules:
        return mail
    routing = route(mail.mail, run.item.envelope, requester=mail.sender, rules=rules)
    if routing.dropped_by is not None and not run.item.released:
        return Decision(Outcome.DROPPED, None, f"dropped by rule {routing.dropped_by!r}")
    return dataclasses.replace(mail, routing=routing)
