"""Plain typed values passed between the stages of ticketgate and across its layers (intake,
pipeline, store, notify), so that no layer imports another one just for a type; standard library
only (an import-linter contract in pyproject.toml holds that)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


# A ticket in these statuses is done; every other status is open (the queue, `#queue`, the digest,
# escalations, a customer's list: SPEC §12).
DONE_STATUSES: tuple[str, ...] = (Status.RESOLVED.value, Status.CLOSED.value)
OPEN_STATUSES: tuple[str, ...] = tuple(status.value for status in Status if status.value not in DONE_STATUSES)


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


class Role(StrEnum):
    """Who wrote a message on a ticket, as stored in `messages.role` and shown in `tickets show`."""

    REQUESTER = "requester"
    STAFF = "staff"
    CC = "cc"  # anyone else on the conversation (and an unauthenticated staff address)


class Visibility(StrEnum):
    """Whether a message is part of the conversation with the requester or for staff only."""

    PUBLIC = "public"
    INTERNAL = "internal"


class EventKind(StrEnum):
    """The kinds of a ticket's events (`events.kind`, `tickets show`): the values are the stored strings."""

    CREATED = "created"
    TAG = "tag"
    REQUESTER_UNKNOWN = "requester_unknown"
    FOLLOW_UP_OF = "follow_up_of"
    POSSIBLE_FOLLOW_UP_OF = "possible_follow_up_of"
    MESSAGE_ID_COLLISION = "message_id_collision"
    FORGED_SENDER = "forged_sender"
    ATTACHMENT_REJECTED = "attachment_rejected"
    STATUS_CHANGED = "status_changed"
    REOPENED = "reopened"
    PRIORITY_CHANGED = "priority_changed"
    CATEGORY_CHANGED = "category_changed"
    ASSIGNED = "assigned"
    COMMAND_REFUSED = "command_refused"
    UNAUTHENTICATED_STAFF = "unauthenticated_staff"
    AUTO_CLOSED = "auto_closed"
    NOTIFICATION_SKIPPED = "notification_skipped"
    BOUNCE = "bounce"
    BOUNCE_DELAYED = "bounce_delayed"
    ERASED = "erased"
    ESCALATED = "escalated"  # the first response was overdue: the escalation was sent (once)
    RULE = "rule"  # a `[[rules]]` entry fired on the mail that opened the ticket; `new` names it
    ENCRYPTED = "encrypted"  # the mail was encrypted (S/MIME, PGP/MIME): its text could not be read
    ATTACHMENT_UNREADABLE = "attachment_unreadable"  # kept as a file, but its content not opened (TNEF)
    # SPEC §13: a web form's mail read for its fields, a field value not understood, or why a mail
    # from a form sender was not read as the form's; a staff forward that opened the ticket for the
    # original sender (actor: the staff member), or why a staff forward was not read so.
    FORM_READ = "form_read"
    FORM_VALUE_UNKNOWN = "form_value_unknown"
    FORM_NOT_READ = "form_not_read"
    FORWARDED = "forwarded"
    FORWARD_NOT_READ = "forward_not_read"
    # SPEC §13 Copies and Merges
    PARTICIPANT_ADDED = "participant_added"
    PARTICIPANT_REMOVED = "participant_removed"
    MERGED_INTO = "merged_into"  # on the merged ticket: it now lives in `new`
    MERGED_FROM = "merged_from"  # on the ticket merged into: `new` was merged into it


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
    # SPEC §13: "S/MIME" or "PGP/MIME" when the mail holds ciphertext (its text says "(encrypted message)").
    encrypted: str | None = None
    # Parts kept as plain files that could not be opened (a winmail.dat that is not TNEF), each with why.
    unreadable: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """First value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


# The line at the top of every notification body: a reply is cut off there (pipeline/quotes.py),
# and every template puts it first (notify/planner.py hands it to them).
REPLY_MARKER = "-- reply above this line --"


# --- a mail's attachments, sorted -------------------------------------------------------------
# Made by gateway/mail/screenshots.py, stored by gateway/store/files.py.


@dataclass(frozen=True)
class Screenshot:
    """A decoded image, ready to store: normalised PNG bytes and their SHA-256."""

    sha256: str  # of the normalised PNG bytes
    png: bytes  # metadata-free, orientation applied, sRGB
    thumbnail: bytes  # PNG, fits in pipeline/screenshots.py's THUMBNAIL_SIZE, aspect kept
    width: int
    height: int
    filename: str  # sanitised original name, or "screenshot-N.png"
    source_format: str  # "PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "HEIF"


@dataclass(frozen=True)
class RejectedImage:
    """A part that was refused (an image that cannot be used, or any part over a limit), and why."""

    filename: str
    reason: str  # for people, e.g. "image too large: 60000x60000 pixels exceeds 40000000"


@dataclass(frozen=True)
class PlainAttachment:
    """A part that is not an image, kept as it came."""

    filename: str
    content_type: str  # from the bytes where they tell, else the declared type; never image/*
    payload: bytes


@dataclass(frozen=True)
class SortedAttachments:
    """Every part of a mail lands in exactly one of these."""

    screenshots: tuple[Screenshot, ...]
    attachments: tuple[PlainAttachment, ...]
    rejected: tuple[RejectedImage, ...]
    ignored: tuple[str, ...]  # "name: reason" for tiny images, tracking pixels, logos, repeats


# --- happenings --------------------------------------------------------------------------------
# What processing a mail changed, as typed values: the stages record them, the notification
# planner (gateway/notify) reads them. Stages never send or queue mail themselves; they append
# happenings to the mail's context, and the planner turns them into outbox rows in the same
# transaction. So "what happened" and "who is told" stay separate, and loop protection is applied
# in one place. Here rather than in the pipeline so that notify does not import the pipeline.


@dataclass(frozen=True)
class TicketOpened:
    ticket_id: int
    message_db_id: int
    message_id: str | None  # the first message's Message-ID as stored: the new ticket's thread
    requester: Address
    acknowledge: bool  # False for automated mail and loop signals: no ticket_created to the sender
    tags: tuple[str, ...]
    has_screenshot: bool
    text: str  # the cleaned first message, so the acknowledgement can say what would help
    not_acknowledged_because: str = ""  # why not, when a stage knows better than "automated" (staff see it)
    copied: tuple[Address, ...] = ()  # the participants the opening mail made (SPEC §13): named in the ack
    has_files: bool = True  # False: the stage stored no screenshot and no attachment with the message


@dataclass(frozen=True)
class ReplyAdded:
    ticket_id: int
    message_db_id: int
    author: Address
    role: Role
    visibility: Visibility
    notify: bool  # False when loop signals forbid answering this mail
    has_files: bool = True  # False: the stage stored no screenshot and no attachment with the message


@dataclass(frozen=True)
class StatusChanged:
    ticket_id: int
    old: str
    new: str
    actor: str
    merged_into: int | None = None  # Closed by `#merge`: the ticket it was merged into (SPEC §13)


@dataclass(frozen=True)
class CommandResult:
    """A staff mail carried commands: the receipt lists what was applied and what was refused."""

    ticket_id: int
    staff: Address
    applied: tuple[str, ...]  # the command lines applied, as written
    refused: tuple[tuple[str, str], ...]  # (line, reason)
    queue: str | None = None  # `#queue` ("all") or `#queue mine` ("mine"): the receipt lists the queue


@dataclass(frozen=True)
class BounceReceived:
    inbox_id: int
    verp_detail: str | None
    recipients: tuple[str, ...]
    permanent: bool
    status: str | None
    diagnostic: str | None
    # Message-IDs of the returned mail, for a bounce that did not come back to a VERP address.
    message_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TicketsRequested:
    """A customer asked for their own tickets (a mail to `support+tickets@`, SPEC §12): the list of
    `requester`'s tickets is due to that address, the mail's `From`, and to nobody else."""

    inbox_id: int
    requester: Address
    message_id: str | None  # of the asking mail, so the answer threads under it


@dataclass(frozen=True)
class QueueRequested:
    """Authenticated staff sent `#queue` (or `#queue mine`) alone to a plain gateway address: the
    receipt, about no ticket, lists the queue."""

    inbox_id: int
    staff: Address
    scope: str  # "all" or "mine"
    lines: tuple[str, ...]  # the command lines, as written
    message_id: str | None  # of the asking mail, so the receipt threads under it


@dataclass(frozen=True)
class ResponseOverdue:
    """The scheduler found a ticket's first response overdue (SPEC §12): escalate it, once."""

    ticket_id: int
    due_at: datetime  # aware UTC
    overdue_by: timedelta


Happening = (
    TicketOpened
    | ReplyAdded
    | StatusChanged
    | CommandResult
    | BounceReceived
    | TicketsRequested
    | QueueRequested
    | ResponseOverdue
)


# What became of one inbox item (the processor's answer; logs and the CLI show it).
class Outcome(StrEnum):
    TICKET = "ticket"
    REPLY = "reply"
    DUPLICATE = "duplicate"
    BOUNCE = "bounce"
    ABUSE_REPORT = "abuse_report"
    AUTO_REPLY = "auto_reply"
    SPAM = "spam"  # the deployment's filter said spam: stored, no ticket, releasable
    FLOOD = "flood"  # over the sender's new-ticket limit: stored, no ticket, releasable
    MY_TICKETS = "my_tickets"  # a customer asked for their own tickets (support+tickets@): no ticket
    DROPPED = "dropped"  # a `[[rules]]` entry said drop = true: stored, no ticket, releasable
    QUEUE = "queue"  # staff sent `#queue` alone to a plain gateway address: the receipt, no ticket
    QUARANTINE = "quarantine"
    RETRY = "retry"


@dataclass(frozen=True)
class ProcessResult:
    """What became of one inbox item; `detail` is for people (CLI output, logs)."""

    inbox_id: int
    outcome: Outcome
    ticket_id: int | None = None
    detail: str = ""
