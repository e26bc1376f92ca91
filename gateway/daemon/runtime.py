"""Builds what every command needs from settings: the engine, the schema check, the inbox, the
processor. The one place objects are wired together (the daemon adds its servers on top)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.addresses import GatewayAddresses
from gateway.config import BlobStoreKind, Settings
from gateway.errors import SchemaOutOfDate, TransientError
from gateway.store.blobs import BlobStore, FileBlobStore
from gateway.store.db import make_engine
from gateway.store.inbox import InboxStore
from gateway.store.schema import HEADS, current_revisions, upgrade

if TYPE_CHECKING:  # imported when first used: see Runtime.deps
    from gateway.notify.sender import Sender
    from gateway.pipeline.processor import Processor, ProcessorDeps


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    inbox: InboxStore

    @cached_property
    def deps(self) -> ProcessorDeps:
        """What the processor needs, built (and the pipeline, notify and Jinja2 imported) on first
        use: a command that only reads tickets starts in half the time without them. The daemon and
        its worker processes first ask for it in their main thread, before any worker starts."""
        from gateway.notify.planner import NotificationPlanner
        from gateway.notify.render import Renderer
        from gateway.pipeline.new_ticket_plan import IntakeDefaults
        from gateway.pipeline.processor import ProcessorDeps

        settings = self.settings
        intake_defaults = {
            f"imap:{account.name}": IntakeDefaults(priority=account.priority, category=account.category)
            for account in settings.imap
        }
        ours = GatewayAddresses(settings.gateway.addresses)
        blobs = make_blob_store(settings, self.engine)
        renderer = Renderer(settings.notifications.templates_dir)
        return ProcessorDeps(
            settings=settings,
            ours=ours,
            inbox=self.inbox,
            blobs=blobs,
            intake_defaults=intake_defaults,
            notifier=NotificationPlanner(settings, renderer, ours=ours, blobs=blobs),
        )

    def processor(self, role: str) -> Processor:
        from gateway.pipeline.processor import Processor

        return Processor(self.deps, worker=worker_name(role))

    def sender(self, role: str) -> Sender:
        """The outbox sender, delivering through `outbound.relay`; its claims name this node."""
        from gateway.notify.relay import make_relay
        from gateway.notify.sender import Sender

        return Sender(
            self.inbox.sessions,
            make_relay(self.settings.outbound),
            self.settings.notifications,
            worker=worker_name(role),
            node_id=self.inbox.node_id,
            blobs=self.deps.blobs,
        )

    def close(self) -> None:
        self.engine.dispose()


def worker_name(role: str) -> str:
    """Who holds a claim, for operators reading the inbox: host, process and role."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}"


def ensure_schema(engine: Engine) -> None:
    """Create the schema on a fresh database; refuse to run on one that is behind or ahead."""
    try:
        current = current_revisions(engine)
        if not current:
            upgrade(engine)
            return
    except SQLAlchemyError as exc:
        raise TransientError(f"database unavailable: {str(exc).strip().splitlines()[0]}") from exc
    heads = HEADS
    if current != heads:
        raise SchemaOutOfDate(
            f"database schema is at revision {', '.join(sorted(current))}, this ticketgate needs "
            f"{', '.join(sorted(heads))}: run `ticketgate db upgrade`"
        )


def make_blob_store(settings: Settings, engine: Engine) -> BlobStore:
    """The store `storage.blobs` names: the database's `blobs` table, or the folder `storage.blob_dir`."""
    if settings.storage.blobs is BlobStoreKind.DATABASE:
        from gateway.store.db_blobs import DatabaseBlobStore  # SQLAlchemy's PostgreSQL dialect: not for reads

        return DatabaseBlobStore(engine)
    return FileBlobStore(Path(settings.storage.blob_dir))


def build_runtime(
    settings: Settings, *, engine: Engine | None = None, node_id: int | None = None, daemon: bool = False
) -> Runtime:
    """`node_id`: the `nodes` row of the serve this runtime works for (its claims name it).
    `daemon`: serve and its worker processes, whose every wait on PostgreSQL is bounded by
    `database.reply_timeout` (a command may run one long statement on purpose)."""
    reply_timeout = settings.database.reply_timeout if daemon else None
    engine = engine or make_engine(settings.database.url, reply_timeout=reply_timeout)
    ensure_schema(engine)
    inbox = InboxStore(engine, node_id=node_id)
    return Runtime(settings=settings, engine=engine, inbox=inbox)


@contextmanager
def open_runtime(settings: Settings) -> Iterator[Runtime]:
    """The runtime for one command; its engine is always disposed of."""
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()
