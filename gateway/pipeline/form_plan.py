"""What a web form's mail says about the ticket it opens (SPEC §13 "Web forms"); a pure planner.

It starts from the plan any mail would get (gateway.pipeline.new_ticket_plan: subject tags, `+`
address tags, defaults) and lets the form's fields speak over it:
- the requester is the visitor: the first usable Reply-To address that is neither the form's sender
  nor one of the gateway's own, else the form's Email field; the name is Reply-To's display name,
  else the Name field. With neither address the requester is `unknown@invalid` and nobody is
  acknowledged: the acknowledgement never goes to the form's sender;
- Title and Description give the title (one line, capped as any title) and the description (capped
  at 500 characters as any); a field left out keeps what the mail gives otherwise;
- Priority and Category values are looked up as priority and category names and then as tag words
  (`High`, `urgent`, `Billing & Payments`, `billing`); an empty value keeps the default quietly, a
  value not understood keeps the default and is an event (`form_value_unknown`) naming it.
The first message's text stays the whole form body, so nothing the visitor typed is lost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import getaddresses

from gateway.addresses import GatewayAddresses
from gateway.config import CustomerDirectory, FormSettings
from gateway.config.validators import find_category
from gateway.domain import Address, EventKind, ParsedMail, Priority, TagVocabulary, Tier
from gateway.mail.description import make_description
from gateway.mail.forms import form_fields
from gateway.mail.requester import UNKNOWN_SENDER, usable
from gateway.mail.subject import cap_title
from gateway.pipeline.new_ticket_plan import NewTicket

# (kind, actor, field, new): an event written with the ticket (open_ticket.Event).
FormEvent = tuple[EventKind, str, str, str]
ACTOR = "ticketgate"


@dataclass(frozen=True)
class FormTicket:
    plan: NewTicket
    events: tuple[FormEvent, ...]
    visitor: Address | None  # None: the mail names no visitor address (requester unknown@invalid)


def plan_form_ticket(
    mail: ParsedMail,
    form: FormSettings,
    base: NewTicket,
    *,
    vocabulary: TagVocabulary,
    categories: Sequence[str],
    ours: GatewayAddresses,
    customers: CustomerDirectory,
) -> FormTicket:
    """The ticket the form mail opens; `base` is the plan the mail would get as an ordinary mail."""
    fields = form_fields(mail.text, mail.html, form.labels, others=form.other_fields)
    events: list[FormEvent] = []
    visitor, source = _visitor(mail, fields, form, ours)
    plan = base
    if visitor is not None:
        customer = customers.lookup(visitor.address)
        plan = dataclasses.replace(
            plan,
            requester=visitor,
            tier=customer.tier if customer else Tier.FREE,
            account_manager=customer.account_manager if customer else None,
        )
    else:
        unknown = Address(UNKNOWN_SENDER, fields.get("name", ""))
        plan = dataclasses.replace(plan, requester=unknown, tier=Tier.FREE, account_manager=None)
        why = (
            f"the form mail of {form.sender} names no visitor address: no usable Reply-To and no "
            f"{form.email_field!r} field with an address; nobody is acknowledged"
        )
        events.append((EventKind.REQUESTER_UNKNOWN, ACTOR, "requester", why))
    title = " ".join(fields.get("title", "").split())
    if title:
        plan = dataclasses.replace(plan, title=cap_title(title))
    description = fields.get("description", "").strip()
    if description:
        plan = dataclasses.replace(plan, description=make_description(description))
    priority_value = fields.get("priority", "").strip()
    if priority_value:
        priority = _priority(priority_value, vocabulary)
        if priority is None:
            events.append(_unknown("priority", form.priority_field, priority_value, plan.priority.value))
        else:
            plan = dataclasses.replace(plan, priority=priority)
    category_value = fields.get("category", "").strip()
    if category_value:
        category = _category(category_value, vocabulary, categories)
        if category is None:
            events.append(_unknown("category", form.category_field, category_value, plan.category))
        else:
            plan = dataclasses.replace(plan, category=category)
    read = ", ".join(label for field, label in form.labels.items() if field in fields) or "no field"
    said = f"read as the form of {form.sender}: requester from {source}; fields read: {read}"
    events.insert(0, (EventKind.FORM_READ, ACTOR, "form", said))
    return FormTicket(plan, tuple(events), visitor)


def _visitor(
    mail: ParsedMail, fields: dict[str, str], form: FormSettings, ours: GatewayAddresses
) -> tuple[Address | None, str]:
    """The visitor's address and name, and where the address came from."""
    sender = form.sender.lower()

    def acceptable(address: str) -> bool:
        return usable(address) and address.strip().lower() != sender and not ours.is_ours(address)

    name_field = " ".join(fields.get("name", "").split())
    for mailboxes in mail.mailboxes.get("reply-to", ()):
        for mailbox in mailboxes:
            if acceptable(mailbox.address):
                return Address(mailbox.address.strip(), mailbox.name or name_field), "Reply-To"
    value = fields.get("email", "")
    for name, address in getaddresses([value]) if value else ():
        if acceptable(address):
            return Address(address.strip(), name_field or name.strip()), f"the {form.email_field!r} field"
    return None, "nowhere"


def _priority(value: str, vocabulary: TagVocabulary) -> Priority | None:
    wanted = " ".join(value.split()).casefold()
    for priority in Priority:
        if priority.value.casefold() == wanted:
            return priority
    meaning = vocabulary.lookup(wanted)
    return meaning.priority if meaning is not None else None


def _category(value: str, vocabulary: TagVocabulary, categories: Sequence[str]) -> str | None:
    named = find_category(" ".join(value.split()), categories)
    if named is not None:
        return named
    meaning = vocabulary.lookup(" ".join(value.split()))
    return meaning.category if meaning is not None else None


def _unknown(field: str, label: str, value: str, kept: str) -> FormEvent:
    shown = value if len(value) <= 80 else value[:79] + "…"
    said = f"{label}: {shown!r} is no {field} nor a tag word of the vocabulary; kept {kept}"
    return (EventKind.FORM_VALUE_UNKNOWN, ACTOR, field, said)
