"""Plain typed values passed between the stages of ticketgate; standard library only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Priority(StrEnum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    URGENT = "Urgent"

    @property
    def rank(self) -> int:
        """Queue rank: 0 sorts first (Urgent)."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}


class Status(StrEnum):
    OPEN = "Open"
    IN_PROGRESS = "In Progress"
    WAITING = "Waiting on user"
    RESOLVED = "Resolved"
    CLOSED = "Closed"


class Tier(StrEnum):
    FREE = "Free"
    PRO = "Pro"
    ENTERPRISE = "Enterprise"

    @property
    def rank(self) -> int:
        """Queue rank: 0 sorts first (Enterprise)."""
        return _TIER_RANK[self]


_TIER_RANK = {Tier.ENTERPRISE: 0, Tier.PRO: 1, Tier.FREE: 2}


TECHNICAL = "Technical Issues & Bugs"
BILLING = "Billing & Payments"
ACCOUNT = "Account & Access"
PAYMENT_PLANS = "Payment Plans"
FEATURES = "Feature Requests"
SECURITY = "Security"
GENERAL = "General Questions"

DEFAULT_CATEGORY = TECHNICAL
DEFAULT_CATEGORIES: tuple[str, ...] = (
    TECHNICAL,
    BILLING,
    ACCOUNT,
    PAYMENT_PLANS,
    FEATURES,
    SECURITY,
    GENERAL,
)


@dataclass(frozen=True)
class TagMeaning:
    """What one tag word means: a priority, a category, or (rarely) both."""

    priority: Priority | None = None
    category: str | None = None


@dataclass(frozen=True)
class TagVocabulary:
    """Tag words (lower case) mapped to their meaning; used for subject tags, sub-addresses and commands."""

    words: Mapping[str, TagMeaning]

    def lookup(self, word: str) -> TagMeaning | None:
        return self.words.get(word.strip().lower())


def _build_default_vocabulary() -> TagVocabulary:
    groups: list[tuple[tuple[str, ...], TagMeaning]] = [
        (("urgent", "asap", "critical"), TagMeaning(priority=Priority.URGENT)),
        (("high",), TagMeaning(priority=Priority.HIGH)),
        (("medium", "normal"), TagMeaning(priority=Priority.MEDIUM)),
        (("low",), TagMeaning(priority=Priority.LOW)),
        (("bug", "error", "crash"), TagMeaning(category=TECHNICAL)),
        (("billing", "invoice", "payment", "refund"), TagMeaning(category=BILLING)),
        (("login", "password", "account"), TagMeaning(category=ACCOUNT)),
        (("plan", "term"), TagMeaning(category=PAYMENT_PLANS)),
        (("feature", "idea"), TagMeaning(category=FEATURES)),
        (("security", "vulnerability"), TagMeaning(category=SECURITY)),
        (("question", "howto"), TagMeaning(category=GENERAL)),
    ]
    return TagVocabulary(words={word: meaning for words, meaning in groups for word in words})


DEFAULT_VOCABULARY = _build_default_vocabulary()


@dataclass(frozen=True)
class Address:
    """A mailbox: the bare address (as written, compared lower-cased) and its display name."""

    address: str
    name: str = ""


@dataclass(frozen=True)
class Envelope:
    """What the transport told us: SMTP MAIL FROM and RCPT TO, and how the mail came in."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    source: str  # "smtp", "lmtp", "pipe", "imap:<account>"


@dataclass(frozen=True)
class ParsedAttachment:
    """One attachment or inline part, with its decoded bytes."""

    filename: str | None
    content_type: str
    payload: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    """A mail as the pipeline needs it, parsed once from the raw bytes."""

    message_id: str | None  # without angle brackets
    subject: str  # RFC 2047 decoded, whitespace folded
    sender: Address | None  # From
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    delivered_to: tuple[str, ...]
    date: datetime | None
    in_reply_to: tuple[str, ...]  # message ids without angle brackets
    references: tuple[str, ...]
    text: str  # the plain-text body; HTML-only mail converted to text
    html: str | None
    attachments: tuple[ParsedAttachment, ...]
    headers: Mapping[str, tuple[str, ...]]  # lower-case name -> decoded values, in order
    content_type: str  # top-level, lower case, e.g. "multipart/report"
    content_hash: str  # sha256 hex of From, Date, Subject and body: the identity of the content
    defects: tuple[str, ...] = field(default=())
    # From, Sender and Reply-To: per header, in order, the mailboxes read from its undecoded value
    # (an encoded word is display-name text, never an address), names decoded after.
    mailboxes: Mapping[str, tuple[tuple[Address, ...], ...]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """First value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None
