"""Content-addressed storage of screenshot bytes: the SHA-256 of the bytes is their name.

The same picture is stored once however often it is sent. ``BlobStore`` is the interface the
rest of ticketgate uses: the folder-backed ``FileBlobStore`` here (`storage.blob_dir`), and
``DatabaseBlobStore`` (gateway/store/db_blobs.py, `storage.blobs = "database"`), which every node
sharing the database reaches.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gateway.errors import TransientError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BlobNotFoundError(LookupError):
    """No blob is stored under this hash."""


class BlobCorruptError(Exception):
    """The stored bytes no longer hash to their name: the storage under the store is damaged."""


BlobUnreadable = (BlobNotFoundError, BlobCorruptError)


def blob_problem(exc: BlobNotFoundError | BlobCorruptError) -> str:
    """What an operator reads about a blob that cannot be read, in one line."""
    if isinstance(exc, BlobNotFoundError):
        return f"blob {exc} is missing from the blob store"
    return f"{exc} (it is written again when the same file arrives again)"


class BlobStore(Protocol):
    """Where screenshot bytes live, named by the lower-case hex SHA-256 of their content."""

    def put(self, data: bytes, *, session: Session | None = None) -> str:
        """Store ``data`` (once; storing it again changes nothing) and return its SHA-256 hex.

        ``session`` is the caller's transaction: a store in the database writes in it (so the
        bytes commit with the rows naming them); a store elsewhere ignores it."""
        ...

    def get(self, sha256: str, *, session: Session | None = None) -> bytes:
        """The bytes stored under ``sha256``; ``BlobNotFoundError`` when there are none.

        A caller inside a transaction passes it as ``session`` (on SQLite a second transaction
        beside it would wait for the first's write lock)."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether bytes are stored under ``sha256``."""
        ...

    def size(self, sha256: str, *, session: Session | None = None) -> int:
        """How many bytes are stored under ``sha256``, without reading them; ``BlobNotFoundError``
        when there are none (``session`` as for ``get``)."""
        ...

    def delete(self, sha256: str) -> bool:
        """Remove the bytes under ``sha256`` (an erase request); False when there were none."""
        ...


def check_sha256(sha256: str) -> str:
    """``sha256`` when it is 64 lower-case hex digits, else ``ValueError``: a name like
    ``../../etc/passwd`` must never reach a file path."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise ValueError(f"not a lower-case hex SHA-256 digest: {sha256[:80]!r}")
    return sha256


class FileBlobStore:
    """Blobs as files under ``root``, as ``root/ab/cd/abcd…`` (two fan-out levels keep folders small).

    A blob is written to a temporary file in its final folder, flushed to disk, then renamed into
    place, so the final name only ever holds complete bytes, even after a crash.
    """

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def path_of(self, sha256: str) -> Path:
        """Where the blob named ``sha256`` is (or would be) kept."""
        name = check_sha256(sha256)
        return self._root / name[:2] / name[2:4] / name

    def put(self, data: bytes, *, session: Session | None = None) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_of(sha256)
        if self._intact(path, sha256, len(data)):
            return sha256
        try:
            self._write_atomically(path, data)
        except OSError as exc:
            # A full or unreachable disk may pass; the message is retried rather than lost.
            raise TransientError(f"cannot store blob {sha256} in the blob store {self._root}: {exc}") from exc
        return sha256

    def _intact(self, path: Path, sha256: str, size: int) -> bool:
        """Whether `path` holds the blob's bytes already. A copy that is missing, of another size or
        no longer hashing to its name is not: storing the same content again writes it anew, so
        the picture arriving again repairs a damaged blob (SPEC §15). The size is asked first
        (cheap); only a copy of the right size is read and hashed."""
        try:
            intact = path.stat().st_size == size
            if intact:
                with path.open("rb") as handle:
                    intact = hashlib.file_digest(handle, "sha256").hexdigest() == sha256
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("blob %s unreadable, writing it again: %s", path, exc)
            return False
        if not intact:
            log.warning("blob %s was damaged (it no longer matches its SHA-256): written again", path)
        return intact

    def get(self, sha256: str, *, session: Session | None = None) -> bytes:
        path = self.path_of(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(sha256) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobCorruptError(f"blob {path} does not match its hash")
        return data

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def size(self, sha256: str, *, session: Session | None = None) -> int:
        try:
            return self.path_of(sha256).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(sha256) from None

    def names(self) -> Iterator[str]:
        """Every stored blob's SHA-256, in no particular order (half-written files are skipped)."""
        if not self._root.is_dir():
            return
        for path in self._root.glob("??/??/*"):
            if _SHA256_HEX.fullmatch(path.name) and path.name[:2] == path.parent.parent.name:
                yield path.name

    def delete(self, sha256: str) -> bool:
        try:
            self.path_of(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def _write_atomically(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name starts with a dot and never matches the hash pattern, so a reader
        # can never mistake a half-written file for a blob.
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            # Same content under the same name: a concurrent writer that won the race is harmless.
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
