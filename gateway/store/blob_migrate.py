"""Moves screenshot and attachment bytes from one blob store to another (`ticketgate storage
migrate`): a deployment going from one node on a folder to several on the database, or back.

Copy-then-verify, one blob at a time: a blob already in the target is skipped, so running it again
is harmless and an interrupted run resumes where it stopped. The source is left as it was (the
operator removes it once the config names the new store and everything reads back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from gateway.store.blobs import BlobCorruptError, BlobStore
from gateway.store.models import Attachment, Screenshot


class ListableBlobStore(BlobStore, Protocol):
    def names(self) -> Iterator[str]: ...


@dataclass(frozen=True)
class MigrationReport:
    copied: int  # blobs written to the target by this run
    present: int  # blobs the target had already (an earlier run, or the same picture twice)
    copied_bytes: int
    missing: tuple[str, ...]  # blobs rows name that the target does not have after the run
    damaged: tuple[str, ...] = ()  # source blobs whose bytes no longer match their name: not copied


def migrate_blobs(
    source: ListableBlobStore,
    target: BlobStore,
    *,
    referenced: Iterable[str] = (),
    progress: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Copy every blob of `source` that `target` lacks; then check the `referenced` ones are there."""
    copied = present = copied_bytes = 0
    damaged: list[str] = []
    for seen, sha256 in enumerate(source.names(), start=1):
        if target.exists(sha256):
            present += 1
        else:
            try:
                data = source.get(sha256)  # checks the bytes still hash to their name
            except BlobCorruptError:
                damaged.append(sha256)  # copying it would spread the damage; the rest goes on
                continue
            stored = target.put(data)
            if stored != sha256:  # cannot happen unless a store is broken: stop before going on
                raise RuntimeError(f"blob {sha256} was stored as {stored}")
            copied += 1
            copied_bytes += len(data)
        if progress is not None and seen % 1000 == 0:
            progress(seen)
    missing = tuple(sorted(sha for sha in set(referenced) if not target.exists(sha)))
    return MigrationReport(
        copied=copied, present=present, copied_bytes=copied_bytes, missing=missing, damaged=tuple(damaged)
    )


def referenced_blobs(session: Session) -> list[str]:
    """Every blob name the tickets' screenshots, thumbnails and attachments point to."""
    query = union(select(Screenshot.sha256), select(Screenshot.thumbnail_sha256), select(Attachment.sha256))
    return [sha for sha in session.scalars(select(query.subquery().c[0])) if sha]
