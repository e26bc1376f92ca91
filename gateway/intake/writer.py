"""Group commit into the inbox: intake coroutines hand over mails, one thread commits them in batches.

Every SMTP `250` must mean "committed", and a commit costs an fsync. A commit takes its batch
once its transaction has begun (on SQLite: once it holds the write lock, which the processors hold
for a batch of their own), so the mails that arrived while it waited for the lock are in it; those
that arrive while it commits wait for the next one and share its transaction. Throughput grows with
load while each caller still hears its own inbox id only after its batch's commit returned.
The database is only ever touched from the writer's own thread: the event loop never blocks on it.

While commits fail (disk full, database refusing writes) the writer says so (`problems()`, what
`/readyz` and the systemd `STATUS=` line report, SPEC §15), and every `PROBE_SECONDS` without mail
it tries a test write (gateway/store/write_probe.py), so it knows it can write again without
waiting for a sender to try: `/readyz` turns back to ready on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

from gateway.domain import Envelope
from gateway.errors import TransientError

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_MAILS = 64
DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024
PROBE_SECONDS = 5.0  # while commits fail: how often a test write asks whether they work again


class InboxSink(Protocol):
    """What the writer needs of the inbox (`gateway.store.inbox.InboxStore` is one)."""

    def add_many(self, mails: Sequence[tuple[bytes, Envelope]]) -> list[int]: ...

    # A sink may also have `add_taken(take)`: commit what `take()` gives once the transaction has
    # begun (`InboxStore.add_taken`); the writer uses it when it is there.

    def probe_write(self) -> None:
        """A write that leaves nothing behind; TransientError when none can be made now."""
        ...


@dataclass
class _Pending:
    raw: bytes
    envelope: Envelope
    future: asyncio.Future[int]


class InboxWriter:
    """Commits mails to the inbox in batches, on one dedicated thread.

    `start()` before the first `store()`; `close()` stops taking new mails, commits everything
    already handed over, then stops the thread.
    """

    def __init__(
        self,
        inbox: InboxSink,
        *,
        max_batch_mails: int = DEFAULT_MAX_BATCH_MAILS,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    ) -> None:
        if max_batch_mails < 1 or max_batch_bytes < 1:
            raise ValueError("batch bounds must be positive")
        self._inbox = inbox
        self._max_mails = max_batch_mails
        self._max_bytes = max_batch_bytes
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._outage = False
        self.failing_since: datetime | None = None  # the first failed commit of the current outage
        self.failure = ""  # why the last commit or test write failed
        self.probe_seconds = PROBE_SECONDS
        self.committed_batches = 0  # counters for logs and tests: how well group commit works
        self.committed_mails = 0

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("InboxWriter already started")
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-writer")
        self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def close(self) -> None:
        """Commit what was already handed over, then stop; later `store()` calls get TransientError."""
        if self._task is None or self._closing:
            return
        self._closing = True
        assert self._wakeup is not None and self._executor is not None
        self._wakeup.set()
        await self._task
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> InboxWriter:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def store(self, raw: bytes, envelope: Envelope) -> int:
        """Commit one mail and return its inbox id; TransientError when it could not be stored."""
        if self._task is None or self._wakeup is None:
            raise RuntimeError("InboxWriter.start() was not called")
        if self._closing:
            raise TransientError("inbox writer is shutting down")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(raw, envelope, future))
        self._wakeup.set()
        return await future

    # --- the committing side ------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                if not self._outage:
                    await self._wakeup.wait()
                    continue
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self.probe_seconds)
                except TimeoutError:
                    await self._probe(loop)
                continue
            await self._commit_queued(loop)

    def _take_batch(self) -> list[_Pending]:
        """The next batch: at least one mail, then more while within both bounds."""
        batch: list[_Pending] = []
        size = 0
        while self._queue and len(batch) < self._max_mails:
            head = self._queue[0]
            if batch and size + len(head.raw) > self._max_bytes:
                break
            self._queue.popleft()
            # A caller that went away (connection lost) before its commit began heard nothing:
            # leaving its mail out keeps "stored" and "acknowledged" the same thing.
            if head.future.done():
                continue
            batch.append(head)
            size += len(head.raw)
        return batch

    async def _commit_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the next batch. With a sink that can (`add_taken`), the batch is taken once the
        transaction has begun — on SQLite, once it holds the write lock — so every mail that
        arrived while the commit waited for the lock is in it, rather than waiting for the lock
        once more behind it: what made a `250` wait for two turns on the lock instead of one."""
        add_taken = getattr(self._inbox, "add_taken", None)
        if add_taken is None:
            batch = self._take_batch()
            if batch:
                await self._commit(loop, batch)
            return
        taken: list[_Pending] = []

        def take() -> list[tuple[bytes, Envelope]]:
            # On the writer's thread: the event loop only appends to the queue meanwhile (a deque
            # is safe for one appender and one taker), and this commit's callers hear nothing
            # before it returns.
            taken.extend(self._take_batch())
            return [(pending.raw, pending.envelope) for pending in taken]

        await self._commit(loop, taken, lambda: add_taken(take))

    async def _commit(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Pending],
        add: Callable[[], list[int]] | None = None,
    ) -> None:
        """Commit `batch` (or, with `add`, whatever `add` takes into `batch` once its transaction
        has begun) and answer each caller: its inbox id, or TransientError."""
        assert self._executor is not None
        if add is None:
            mails = [(pending.raw, pending.envelope) for pending in batch]
            add = lambda: self._inbox.add_many(mails)  # noqa: E731
        try:
            ids = await loop.run_in_executor(self._executor, add)
        except TransientError as exc:
            batch = batch or self._take_batch()  # failed before it took any: those waiting now
            self._note_outage(exc)
            for pending in batch:
                _fail(pending.future, TransientError(str(exc)), exc)
            return
        except Exception as exc:
            # Not a database fault we know: still nothing was stored, so every caller must say
            # "try again later" rather than crash the writer and stall all intake behind it.
            batch = batch or self._take_batch()
            log.exception("inbox commit failed unexpectedly for %d mail(s)", len(batch))
            self._note_outage(TransientError(f"inbox commit failed: {exc!r}"))
            for pending in batch:
                _fail(pending.future, TransientError(f"inbox commit failed: {exc!r}"), exc)
            return
        self._recovered("mails are being stored again")
        self.committed_batches += 1
        self.committed_mails += len(batch)
        for pending, inbox_id in zip(batch, ids, strict=True):
            if pending.future.done():
                # The session ended while its batch was committing: stored without a `250`,
                # so the sender will retry and deduplication downstream absorbs the copy.
                log.info("inbox id %d stored, but its sender disconnected before the reply", inbox_id)
            else:
                pending.future.set_result(inbox_id)

    async def _probe(self, loop: asyncio.AbstractEventLoop) -> None:
        """A test write while commits fail: the outage ends when it succeeds."""
        assert self._executor is not None
        try:
            await loop.run_in_executor(self._executor, self._inbox.probe_write)
        except TransientError as exc:
            self._note_outage(exc)
        except Exception as exc:  # as for a commit: a fault we do not know still means "cannot write"
            self._note_outage(TransientError(f"test write failed: {exc!r}"))
        else:
            self._recovered("a test write succeeded")

    def problems(self) -> list[str]:
        """Why intake cannot store mail now, one line (empty while it can): for `/readyz`."""
        since = self.failing_since
        if since is None:
            return []
        return [f"intake cannot write since {since:%Y-%m-%dT%H:%M:%SZ}: {self.failure}"]

    def _note_outage(self, exc: TransientError) -> None:
        self.failure = " ".join(str(exc).split())[:500]
        if not self._outage:
            self._outage = True
            self.failing_since = datetime.now(UTC)
            log.error("inbox unavailable, intake answers 'try again later' until it recovers: %s", exc)
        else:
            log.debug("inbox still unavailable: %s", exc)

    def _recovered(self, how: str) -> None:
        if self._outage:
            self._outage = False
            log.warning("inbox recovered (%s); it could not write since %s", how, self.failing_since)
            self.failing_since = None
            self.failure = ""


def _fail(future: asyncio.Future[int], error: TransientError, cause: BaseException) -> None:
    if not future.done():
        error.__cause__ = cause
        future.set_exception(error)
