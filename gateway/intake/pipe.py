"""Pipe intake: mail handed to `ticketgate ingest` by an MTA's pipe transport, a cron job or a person.

Reads every input first, stores the usable ones in one transaction, and reports per input what
happened, so the caller's exit code can say 0 (stored), 65 (not a mail) or 75 (try again later).
`ingest` stores them already claimed by its processor (`InboxStore.add_claimed`): one transaction
and one commit fewer per run than storing and then claiming.
"""

from __future__ import annotations

import mailbox
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from gateway.domain import Envelope
from gateway.errors import TransientError
from gateway.mail.rawmail import looks_like_mail
from gateway.store.inbox import ClaimedItem, InboxStore

EX_OK = 0
EX_DATAERR = 65
EX_TEMPFAIL = 75


@dataclass(frozen=True)
class PipeInput:
    label: str  # the file name, "-" for stdin, "FILE[#n]" for the n-th mail of an mbox
    raw: bytes | None  # None when the input could not be used at all
    problem: str | None = None


@dataclass(frozen=True)
class StoredInput:
    label: str
    inbox_id: int | None
    exit_code: int
    problem: str | None = None
    claimed: ClaimedItem | None = None  # stored claimed by the worker `store_inputs` was given


def read_inputs(files: Sequence[str], mboxes: Sequence[str], stdin: BinaryIO) -> list[PipeInput]:
    inputs: list[PipeInput] = []
    if not files and not mboxes:
        files = ["-"]
    for name in files:
        try:
            raw = stdin.read() if name == "-" else _read_file(name)
        except OSError as exc:
            inputs.append(PipeInput(name, None, f"cannot read: {exc.strerror or exc}"))
            continue
        inputs.append(_checked(name, raw))
    for name in mboxes:
        inputs.extend(_read_mbox(name))
    return inputs


def _read_file(name: str) -> bytes:
    with open(name, "rb") as handle:
        return handle.read()


def _read_mbox(name: str) -> list[PipeInput]:
    try:
        box = mailbox.mbox(name, create=False)
        keys = list(box.keys())
    except (OSError, mailbox.Error) as exc:
        return [PipeInput(name, None, f"cannot read mbox: {exc}")]
    if not keys:
        return [PipeInput(name, None, "no messages in mbox")]
    found = []
    for number, key in enumerate(keys, start=1):
        found.append(_checked(f"{name}#{number}", box.get_bytes(key)))
    box.close()
    return found


def _checked(label: str, raw: bytes) -> PipeInput:
    if not raw.strip():
        return PipeInput(label, None, "empty input")
    if not looks_like_mail(raw):
        return PipeInput(label, None, "not a mail: no header section")
    return PipeInput(label, raw)


def store_inputs(
    inbox: InboxStore, inputs: Sequence[PipeInput], envelope: Envelope, *, worker: str | None = None
) -> list[StoredInput]:
    """Commit every usable input in one transaction: all are stored, or (transient fault) none.
    With `worker`, stored already claimed by it, for it to process at once (`StoredInput.claimed`)."""
    usable = [(item.raw, envelope) for item in inputs if item.raw is not None]
    ids: list[int] = []
    claimed: list[ClaimedItem | None] = []
    problem: str | None = None
    if usable:
        try:
            if worker is None:
                ids = inbox.add_many(usable)
                claimed = [None] * len(ids)
            else:
                items = inbox.add_claimed(usable, worker)
                ids, claimed = [item.id for item in items], list(items)
        except TransientError as exc:
            problem = str(exc)
    stored: list[StoredInput] = []
    next_stored = iter(zip(ids, claimed, strict=True))
    for item in inputs:
        if item.raw is None:
            stored.append(StoredInput(item.label, None, EX_DATAERR, item.problem))
        elif problem is not None:
            stored.append(StoredInput(item.label, None, EX_TEMPFAIL, problem))
        else:
            inbox_id, claim = next(next_stored)
            stored.append(StoredInput(item.label, inbox_id, EX_OK, claimed=claim))
    return stored


def worst_exit_code(codes: Sequence[int]) -> int:
    """Try-again-later beats bad data beats success: the MTA must retry what can succeed later."""
    for code in (EX_TEMPFAIL, EX_DATAERR):
        if code in codes:
            return code
    return EX_OK
