"""The database schema as typed SQLAlchemy 2 models; the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time as the UTC columns read it back: one without a zone is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, and naive/aware mixes break sorting."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return as_utc(value)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class InboxItem(Base):
    """A mail as it arrived: raw bytes and envelope, committed before the sender hears `250`.

    The same row is the quarantine: a mail that cannot be processed stays here with its reason,
    so `quarantine retry` replays the original bytes. Processed rows keep the raw original that
    the ticket's messages point to.
    """

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(64))
    mail_from: Mapped[str] = mapped_column(String(998), default="")
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON, default=list)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(128), default=None)
    # The `nodes` row of the serve that holds the claim: once its heartbeat stops, the claim is
    # taken over without waiting for the lease (None: a claim by `ingest`, lease only).
    claimed_node: Mapped[int | None] = mapped_column(Integer, default=None)
    message_id: Mapped[str | None] = mapped_column(String(998), default=None)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_detail: Mapped[str | None] = mapped_column(Text, default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set by `inbox release`: this one mail is processed with the spam verdict and the flood limit
    # bypassed (an operator judged it), however often it is processed again.
    released_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_inbox_state_next", "state", "next_attempt_at"),)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(16))
    priority_rank: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16))
    tier_rank: Mapped[int] = mapped_column(Integer)
    requester_address: Mapped[str] = mapped_column(String(320))
    requester_name: Mapped[str] = mapped_column(String(300), default="")
    assignee: Mapped[str | None] = mapped_column(String(320), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    follow_up_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    possible_follow_up_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    # SPEC §13 Merges: the ticket this one was merged into (it is Closed; later mail goes there).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)

    messages: Mapped[list[Message]] = relationship(
        back_populates="ticket", order_by="Message.id", foreign_keys="Message.ticket_id"
    )
    events: Mapped[list[Event]] = relationship(order_by="Event.id")
    screenshots: Mapped[list[Screenshot]] = relationship(order_by="Screenshot.id")
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")
    rejected_attachments: Mapped[list[RejectedAttachment]] = relationship(order_by="RejectedAttachment.id")
    participants: Mapped[list[Participant]] = relationship(order_by="Participant.id", viewonly=True)
    # The tickets merged into this one (their `merged_into_id` is this id), for `tickets show`.
    merged_from: Mapped[list[Ticket]] = relationship(
        "Ticket", foreign_keys=[merged_into_id], order_by="Ticket.id", viewonly=True
    )

    __table_args__ = (
        Index("ix_tickets_queue", "priority_rank", "tier_rank", "created_at"),
        Index("ix_tickets_status", "status"),
        # The flood limit counts a sender's tickets of the last hour on every new ticket.
        Index("ix_tickets_requester_lower_created", func.lower(requester_address), "created_at"),
    )


class Message(Base):
    """One mail that joined the conversation (or, for auto-replies without a ticket, was recorded)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None, index=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inbox.id"))
    message_id: Mapped[str | None] = mapped_column(String(998), default=None, index=True)
    kind: Mapped[str] = mapped_column(String(32), default="mail")  # mail, auto_reply
    author_address: Mapped[str] = mapped_column(String(320), default="")
    author_name: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str] = mapped_column(String(16), default="requester")
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    threaded_by: Mapped[str] = mapped_column(String(32), default="new")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket | None] = relationship(back_populates="messages", foreign_keys=[ticket_id])

    # A sender's earlier images (logo detection) are looked up by lower-cased author address.
    __table_args__ = (Index("ix_messages_author_lower", func.lower(author_address)),)


class Participant(Base):
    """Someone copied on a ticket (SPEC §13 Copies): told of staff replies and status changes in Cc,
    and their replies join the ticket. One row per ticket and lower-cased address; `added_by` is who
    put them there (the requester, a staff address, or `merge SP-42`)."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    address: Mapped[str] = mapped_column(String(320))  # lower case
    name: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str] = mapped_column(String(16), default="cc")
    added_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("ticket_id", "address"),)


class Attachment(Base):
    """A file kept with a message that is not a screenshot (PDF, log, text); bytes in the blob store."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_db_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class Screenshot(Base):
    """An image taken from a mail, normalised to PNG; bytes and thumbnail in the blob store."""

    __tablename__ = "screenshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_db_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    thumbnail_sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64), default="image/png")


class RejectedAttachment(Base):
    """An attachment that was not kept, and why (a decompression bomb, over a limit, corrupt)."""

    __tablename__ = "rejected_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_db_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    filename: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)


class Event(Base):
    """The audit trail: every change, refused command, bounce and rejected attachment."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(64), default=None)
    old: Mapped[str | None] = mapped_column(Text, default=None)
    new: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(320), default="ticketgate")
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SeenMail(Base):
    """One row per distinct mail processed: the unique key that makes redelivery produce one result.

    `dedup_key` is sha256(Message-ID, content hash), so the same mail twice collides on the unique
    index even when two nodes process both copies at once, while two different mails that reuse a
    Message-ID do not.
    """

    __tablename__ = "seen_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998), default=None, index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inbox.id"))
    outcome: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxRow(Base):
    """One notification, rendered and queued in the transaction of the change that caused it.

    The row is self-contained (the raw mail and its envelope), so the sender needs nothing else.
    `status`: queued, retry, sent, failed (a 5xx or a template error), dead (past its deadline or
    attempts), bounced (a bounce named it). `context` keeps what the templates were given, so a
    row whose rendering failed can be rendered again by `outbox retry` once the template is fixed.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None, index=True)
    template: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(320))
    envelope_from: Mapped[str] = mapped_column(String(320), default="")
    message_id: Mapped[str] = mapped_column(String(998), default="", index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128), default=None)
    claimed_node: Mapped[int | None] = mapped_column(Integer, default=None)  # as on InboxItem
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        # The per-sender acknowledgement limit counts by lower-cased address on every new ticket.
        Index("ix_outbox_to_lower_template_created", func.lower(to_address), "template", "created_at"),
    )


class UndeliverableAddress(Base):
    """An address a permanent bounce named: it gets no more mail until it writes to us again."""

    __tablename__ = "undeliverable_addresses"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # lower case
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column(default=utcnow)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), default=None)


class ImapCheckpoint(Base):
    """How far IMAP intake has taken one folder in: every UID up to `last_uid` under `uidvalidity`
    is committed to the inbox (or was moved to the quarantine folder). A different UIDVALIDITY on
    the server voids it. UIDs and UIDVALIDITY are unsigned 32-bit, hence BigInteger."""

    __tablename__ = "imap_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("account", "folder"),)


class ImapPoll(Base):
    """When each IMAP account was last polled, by which node, and its last error: what `ticketgate
    status` shows an operator (SPEC §10). Written by the polling node at most every half minute
    while all is well, and at once when something fails or recovers."""

    __tablename__ = "imap_polls"

    account: Mapped[str] = mapped_column(String(200), primary_key=True)
    node: Mapped[str] = mapped_column(String(200), default="")
    last_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)


class ImapHealth(Base):
    """Per IMAP account, what `status` shows beside the poll (SPEC §14): the built-in OAuth2 token's
    expiry, last refresh and last refresh error, and the last reconciliation of its folders with the
    inbox (when, how many messages were unreconciled, and which, as JSON)."""

    __tablename__ = "imap_health"

    account: Mapped[str] = mapped_column(String(200), primary_key=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    token_refreshed_at: Mapped[datetime | None] = mapped_column(default=None)
    token_error: Mapped[str | None] = mapped_column(Text, default=None)
    token_error_at: Mapped[datetime | None] = mapped_column(default=None)
    reconciled_at: Mapped[datetime | None] = mapped_column(default=None)
    unreconciled: Mapped[int | None] = mapped_column(Integer, default=None)
    unreconciled_detail: Mapped[str | None] = mapped_column(Text, default=None)


class Blob(Base):
    """Screenshot and attachment bytes kept in the database (`storage.blobs = "database"`), named by
    their SHA-256, so every node sharing the database reaches them (SPEC §9)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Node(Base):
    """One run of `serve`: a new row each start, its heartbeat (`last_beat`) every few seconds.

    Claims name the row; a row whose beat is old (or that stopped) no longer protects its claims.
    """

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_beat: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)


class DoneOnce(Base):
    """A job the scheduler must do once only, done: the primary key is the promise. An escalation
    (`escalation`, the ticket id) and a day's digest (`digest`, the local date) insert their row in
    the transaction that queues their mail, so a second node or a restarted one collides with it
    and queues nothing, whatever the advisory locks did."""

    __tablename__ = "done_once"

    job: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(default=utcnow)
