"""Erasing a person on request (SPEC §12, `tickets erase --requester ADDRESS --yes`): their mails, names,
files and address go from every ticket and notification; each ticket they were on keeps an `erased`
event, so the audit trail says that something was removed, never what.

What goes, for the address (any case):
- the raw originals they sent (inbox rows from them, and the rows of their messages) become empty,
  and so do the originals of every other mail on their own tickets (a staff reply quotes them);
- their messages lose text, subject, author and Message-ID; their screenshots, attachments and
  rejected attachments are deleted, with the blobs no other row still uses;
- on every ticket they were on (their own, and any they wrote to): their address and every name
  they used are replaced by `[erased]` in titles, texts, events and notification subjects; their own
  tickets' requester becomes `erased@invalid` and the description (their words) is emptied;
- notifications on those tickets or to them keep their template, state and times, but not their
  rendered mail or template context; those not yet sent are given up (`dead`): there is nothing
  left to send;
- their undeliverable mark, and their place among the participants of any ticket (SPEC §13).
Afterwards the database is compacted: SQLite's VACUUM rewrites the file (no erased value stays in a
free page); PostgreSQL's plain VACUUM frees the dead row versions for reuse (VACUUM FULL would lock
the tables against the running daemon, so it is left to the operator).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, func, or_, select, text
from sqlalchemy.orm import Session

from gateway.domain import EventKind
from gateway.store.models import (
    Attachment,
    Event,
    InboxItem,
    Message,
    OutboxRow,
    Participant,
    RejectedAttachment,
    Screenshot,
    SeenMail,
    Ticket,
    UndeliverableAddress,
)

ERASED = "[erased]"
ERASED_ADDRESS = "erased@invalid"
ERASED_EVENT = EventKind.ERASED
_FINAL_OUTBOX = ("sent", "bounced")


@dataclass
class Erasure:
    """What one erase did, for the operator; blob hashes the caller must delete from the blob store."""

    tickets: list[int] = field(default_factory=list)
    messages: int = 0
    originals: int = 0
    files: int = 0
    notifications: int = 0
    blobs: set[str] = field(default_factory=set)


def _scrubber(address: str, names: Iterable[str]) -> re.Pattern[str]:
    """The address anywhere; each name they used, whole and word by word (a reply says "Hello Maria"),
    as whole words of three letters or more, so "Al" does not eat "Also"."""
    words: set[str] = set()
    for name in names:
        words |= {name.strip(), *name.replace(",", " ").split()}
    names_found = sorted((w for w in words if len(w) >= 3), key=len, reverse=True)
    alternatives = [re.escape(address), *(rf"\b{re.escape(w)}\b" for w in names_found)]
    return re.compile("|".join(alternatives), re.IGNORECASE)


def erase_person(session: Session, address: str) -> Erasure:
    """Remove `address` and what it wrote, in the caller's transaction (see the module docstring)."""
    wanted = address.strip().lower()
    done = Erasure()
    own = list(session.scalars(select(Ticket).where(func.lower(Ticket.requester_address) == wanted)))
    theirs = list(session.scalars(select(Message).where(func.lower(Message.author_address) == wanted)))
    names = {t.requester_name for t in own} | {m.author_name for m in theirs}
    pattern = _scrubber(wanted, names)

    def scrub(value: str | None) -> str | None:
        return pattern.sub(ERASED, value) if value else value

    copied = list(session.scalars(select(Participant).where(Participant.address == wanted)))
    names |= {p.name for p in copied}
    pattern = _scrubber(wanted, names)
    own_ids = {t.id for t in own}
    ticket_ids = own_ids | {m.ticket_id for m in theirs if m.ticket_id is not None}
    ticket_ids |= {p.ticket_id for p in copied}
    done.tickets = sorted(ticket_ids)

    # Raw originals: what they sent, and every mail on their own tickets (replies quote them).
    inbox_ids = {m.inbox_id for m in theirs}
    if own_ids:
        inbox_ids |= set(session.scalars(select(Message.inbox_id).where(Message.ticket_id.in_(own_ids))))
        inbox_ids |= set(session.scalars(select(InboxItem.id).where(InboxItem.ticket_id.in_(own_ids))))
    inbox_ids |= set(session.scalars(select(InboxItem.id).where(func.lower(InboxItem.mail_from) == wanted)))
    for item in session.scalars(select(InboxItem).where(InboxItem.id.in_(inbox_ids))):
        item.raw, item.size, item.message_id = b"", 0, None
        item.mail_from = ERASED_ADDRESS if item.mail_from.strip().lower() == wanted else item.mail_from
        item.rcpt_tos = [ERASED_ADDRESS if r.strip().lower() == wanted else r for r in item.rcpt_tos]
        item.error, item.error_detail = scrub(item.error), None
        done.originals += 1
    for seen in session.scalars(select(SeenMail).where(SeenMail.inbox_id.in_(inbox_ids))):
        seen.message_id = None

    # Their files, and the blobs no other row uses.
    their_ids = [m.id for m in theirs]
    candidates: set[str] = set()
    for shot in session.scalars(select(Screenshot).where(Screenshot.message_db_id.in_(their_ids))):
        candidates |= {shot.sha256, shot.thumbnail_sha256}
        session.delete(shot)
        done.files += 1
    for attachment in session.scalars(select(Attachment).where(Attachment.message_db_id.in_(their_ids))):
        candidates.add(attachment.sha256)
        session.delete(attachment)
        done.files += 1
    session.execute(delete(RejectedAttachment).where(RejectedAttachment.message_db_id.in_(their_ids)))
    session.flush()
    done.blobs = {sha for sha in candidates if not _blob_used(session, sha)}

    for message in theirs:
        message.text, message.subject, message.message_id = "", "", None
        message.author_address, message.author_name = ERASED_ADDRESS, ""
    done.messages = len(theirs)
    others = select(Message).where(Message.ticket_id.in_(ticket_ids), Message.id.not_in(their_ids))
    for message in session.scalars(others):
        message.text, message.subject = scrub(message.text) or "", scrub(message.subject) or ""
        message.author_name = scrub(message.author_name) or ""

    for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids))):
        ticket.title = scrub(ticket.title) or ""
        if ticket.id in own_ids:
            ticket.requester_address, ticket.requester_name, ticket.description = ERASED_ADDRESS, "", ""
        if ticket.assignee and ticket.assignee.lower() == wanted:
            ticket.assignee = None
    events = select(Event).where(or_(Event.ticket_id.in_(ticket_ids), func.lower(Event.actor) == wanted))
    for event in session.scalars(events):
        event.old, event.new = scrub(event.old), scrub(event.new)
        event.actor = ERASED_ADDRESS if event.actor.lower() == wanted else event.actor

    rows = select(OutboxRow).where(
        or_(OutboxRow.ticket_id.in_(ticket_ids), func.lower(OutboxRow.to_address) == wanted)
    )
    for row in session.scalars(rows):
        mail = dict(row.context.get("_mail", {}))
        mail["to_name"] = ""
        mail.pop("files", None)  # the names and hashes of the screenshots a staff mail showed
        row.context = {"_mail": json.loads(scrub(json.dumps(mail)) or "{}")}
        row.raw, row.subject = b"", scrub(row.subject) or ""
        row.to_address = ERASED_ADDRESS if row.to_address.lower() == wanted else row.to_address
        row.last_error = scrub(row.last_error)
        if row.status not in _FINAL_OUTBOX:
            row.status, row.last_error = "dead", "content erased on a data-protection request"
        done.notifications += 1

    session.execute(delete(UndeliverableAddress).where(UndeliverableAddress.address == wanted))
    # SPEC §13: off every ticket they were copied on; who they copied stays, without their address.
    session.execute(delete(Participant).where(Participant.address == wanted))
    for person in session.scalars(select(Participant).where(Participant.added_by == wanted)):
        person.added_by = ERASED_ADDRESS
    for ticket_id in done.tickets:
        session.add(
            Event(
                ticket_id=ticket_id,
                kind=ERASED_EVENT.value,
                field="requester" if ticket_id in own_ids else "participant",
                new="personal data erased on request: mails, names, files and address",
                actor="ticketgate",
            )
        )
    return done


def _blob_used(session: Session, sha256: str) -> bool:
    shots = select(Screenshot.id).where(
        or_(Screenshot.sha256 == sha256, Screenshot.thumbnail_sha256 == sha256)
    )
    files = select(Attachment.id).where(Attachment.sha256 == sha256)
    return session.scalar(shots.limit(1)) is not None or session.scalar(files.limit(1)) is not None


_TABLES = (
    "inbox", "seen_mails", "messages", "tickets", "events", "outbox", "screenshots", "attachments",
    "rejected_attachments", "undeliverable_addresses",
)  # fmt: skip


def compact(engine: Engine) -> None:
    """Rewrite the database so erased values are not left in free pages or old row versions."""
    if engine.dialect.name == "sqlite":
        # On the driver's connection: the engine opens every transaction with BEGIN IMMEDIATE, and
        # VACUUM must run outside one (the connection is in autocommit mode; busy_timeout waits).
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in _TABLES:
                connection.execute(text(f"VACUUM {table}"))
