"""`ticketgate storage migrate --to database|dir`: moves blobs between the folder store
(`storage.blob_dir`) and the database store (gateway/store/blob_migrate.py does the work)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config import BlobStoreKind, load_settings
from gateway.daemon.runtime import build_runtime
from gateway.store.blob_migrate import migrate_blobs, referenced_blobs
from gateway.store.blobs import FileBlobStore
from gateway.store.db import unit_of_work
from gateway.store.db_blobs import DatabaseBlobStore

EX_DATAERR = 65


def storage_migrate(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    runtime = build_runtime(settings)
    try:
        folder = FileBlobStore(Path(settings.storage.blob_dir))
        database = DatabaseBlobStore(runtime.engine)
        to_database = args.to == BlobStoreKind.DATABASE.value
        source, target = (folder, database) if to_database else (database, folder)
        where = {True: "the database", False: f"folder {folder.root}"}
        with unit_of_work(runtime.inbox.sessions) as session:
            referenced = referenced_blobs(session)
        report = migrate_blobs(
            source,
            target,
            referenced=referenced,
            progress=lambda n: print(f"... {n} blobs looked at", file=sys.stderr),
        )
    finally:
        runtime.close()
    print(
        f"copied {report.copied} blob(s) ({report.copied_bytes} bytes) from {where[not to_database]} "
        f"to {where[to_database]}; {report.present} were there already"
    )
    if report.damaged:
        print(
            f"ticketgate: {len(report.damaged)} blob(s) in {where[not to_database]} are damaged (they no "
            f"longer match their SHA-256) and were not copied, e.g. {report.damaged[0]}",
            file=sys.stderr,
        )
    if report.missing:
        print(
            f"ticketgate: {len(report.missing)} blob(s) that tickets name are not in {where[to_database]} "
            f"(nor in {where[not to_database]}), e.g. {report.missing[0]}",
            file=sys.stderr,
        )
        return EX_DATAERR
    if settings.storage.blobs.value != args.to:
        print(f'now set storage.blobs = "{args.to}" in the config and restart every node')
    return 0
