"""What a mail that opens a ticket says about it: title, description, priority, category, tier.

Pure: everything it needs is passed in. Precedence for priority and category: subject tags, then
`+` sub-address tags, then the intake's own defaults (an IMAP mailbox's category), then config.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.addresses import GatewayAddresses
from gateway.config import Settings
from gateway.domain import Address, Envelope, ParsedMail, Priority, Tier
from gateway.mail.description import make_description
from gateway.mail.quotes import trim_reply
from gateway.mail.requester import UNKNOWN_SENDER, find_requester
from gateway.mail.signed import ENCRYPTED_TEXT
from gateway.mail.subject import parse_subject
from gateway.mail.tags import merge_tags, tag_words_from_addresses, tags_from_addresses

__all__ = ["UNKNOWN_SENDER", "IntakeDefaults", "NewTicket", "plan_new_ticket", "requester_of"]


@dataclass(frozen=True)
class IntakeDefaults:
    """Defaults of the intake a mail came through (an IMAP account may say 'this is billing')."""

    priority: Priority | None = None
    category: str | None = None


@dataclass(frozen=True)
class NewTicket:
    title: str
    description: str
    text: str  # the cleaned text of the first message, for the conversation
    priority: Priority
    category: str
    tier: Tier
    requester: Address
    account_manager: str | None
    tags: tuple[str, ...]  # the subject's tag words
    ticket_refs: tuple[int, ...]
    address_tags: tuple[str, ...] = ()  # the tag words of `support+WORD@` sub-addresses


def requester_of(mail: ParsedMail, envelope: Envelope) -> Address:
    """From, else Sender, Reply-To, the envelope sender, else unknown@invalid (gateway.mail.requester)."""
    found = find_requester(mail, envelope).address
    return Address(found.address.strip(), found.name.strip())


def recipient_addresses(mail: ParsedMail, envelope: Envelope) -> tuple[str, ...]:
    """Where the mail was sent: RCPT TO, or without an envelope the Delivered-To, To and Cc headers."""
    if envelope.rcpt_tos:
        return envelope.rcpt_tos
    return (*mail.delivered_to, *(a.address for a in mail.to), *(a.address for a in mail.cc))


def plan_new_ticket(
    mail: ParsedMail,
    envelope: Envelope,
    *,
    settings: Settings,
    ours: GatewayAddresses,
    defaults: IntakeDefaults = IntakeDefaults(),
) -> NewTicket:
    vocabulary = settings.tickets.vocabulary
    trimmed = trim_reply(mail.text, html=mail.html)
    text = trimmed.text
    subject = parse_subject(
        mail.subject,
        vocabulary=vocabulary,
        ticket_prefix=settings.gateway.ticket_prefix,
        body=text,
        read_tags=True,
    )
    recipients = recipient_addresses(mail, envelope)
    address_tags = merge_tags(tags_from_addresses(recipients, ours, vocabulary))
    priority = (
        subject.priority or address_tags.priority or defaults.priority or settings.tickets.default_priority
    )
    category = (
        subject.category or address_tags.category or defaults.category or settings.tickets.default_category
    )
    requester = requester_of(mail, envelope)
    customer = settings.customers.lookup(requester.address)
    return NewTicket(
        title=subject.title,
        # SPEC §13: an encrypted mail's description says so, whatever readable text came with it. A
        # forward with nothing written above it: what happened is the forwarded mail's text, not the
        # forward's marker and header block (the message keeps the whole).
        description=ENCRYPTED_TEXT if mail.encrypted else make_description(trimmed.forwarded or text),
        text=text,
        priority=priority,
        category=category,
        tier=customer.tier if customer else Tier.FREE,
        requester=requester,
        account_manager=customer.account_manager if customer else None,
        tags=subject.tags,
        ticket_refs=subject.ticket_refs,
        address_tags=tag_words_from_addresses(recipients, ours, vocabulary),
    )
