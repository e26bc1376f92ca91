"""Blobs in the database (`storage.blobs = "database"`) and `ticketgate storage migrate` between the
folder and the database, on SQLite and PostgreSQL; `tickets screenshot` reads back from either."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import update

from gateway.cli.main import main
from gateway.store.blobs import BlobCorruptError, BlobNotFoundError, FileBlobStore
from gateway.store.db import make_engine, unit_of_work
from gateway.store.db_blobs import DatabaseBlobStore
from gateway.store.models import Blob
from gateway.store.schema import upgrade
from tests.helpers import Run, write_config


@pytest.fixture
def store(database_url: str) -> Iterator[DatabaseBlobStore]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield DatabaseBlobStore(engine)
    engine.dispose()


def test_bytes_come_back_by_their_hash_and_are_stored_once(store: DatabaseBlobStore) -> None:
    data = b"\x89PNG picture bytes \x00\xff"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.put(data) == sha  # again: nothing changes, nothing fails
    assert store.get(sha) == data and store.exists(sha)
    assert list(store.names()) == [sha]
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(BlobNotFoundError):
        store.get(missing)
    with pytest.raises(ValueError):
        store.get("../../etc/passwd")


def test_damaged_bytes_are_reported_not_returned(store: DatabaseBlobStore) -> None:
    sha = store.put(b"the original")
    with unit_of_work(store.sessions) as session:
        session.execute(update(Blob).where(Blob.sha256 == sha).values(data=b"bit rot"))
    with pytest.raises(BlobCorruptError):
        store.get(sha)


def test_storing_the_same_bytes_again_repairs_a_damaged_row(store: DatabaseBlobStore) -> None:
    sha = store.put(b"the original")
    with unit_of_work(store.sessions) as session:
        session.execute(update(Blob).where(Blob.sha256 == sha).values(data=b"the originaL"))
    with unit_of_work(store.sessions) as session:
        assert store.put(b"the original", session=session) == sha  # in the caller's transaction
    assert store.get(sha) == b"the original"
    assert list(store.names()) == [sha]


def test_a_blob_written_in_a_transaction_that_rolls_back_is_not_kept(store: DatabaseBlobStore) -> None:
    with pytest.raises(RuntimeError), unit_of_work(store.sessions) as session:
        sha = store.put(b"written with its rows", session=session)
        assert store.get(sha, session=session) == b"written with its rows"
        raise RuntimeError("the mail's transaction fails")
    assert not store.exists(sha)


def test_two_nodes_storing_the_same_picture_at_once_both_succeed(fresh_postgres: str) -> None:
    engine = make_engine(fresh_postgres)
    upgrade(engine)
    first, second = DatabaseBlobStore(engine), DatabaseBlobStore(engine)
    data = b"the same screenshot sent to two nodes"
    second_done = threading.Event()
    errors: list[BaseException] = []

    def second_node() -> None:
        try:
            second.put(data)  # waits for the first transaction, then finds the row there
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        second_done.set()

    try:
        with unit_of_work(first.sessions) as session:
            first.put(data, session=session)
            thread = threading.Thread(target=second_node)
            thread.start()
            assert not second_done.wait(0.5)  # blocked on the uncommitted row, not failed
        thread.join(10)
        assert second_done.is_set() and errors == []
        assert list(first.names()) == [hashlib.sha256(data).hexdigest()]
    finally:
        engine.dispose()


# --- storage migrate and tickets screenshot, through the command line --------------------------


@pytest.fixture
def ticketgate(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """The `ticketgate` command run in this process (its whole argument parsing and exit codes:
    the same code as the installed command, without a new interpreter for each of these calls)."""

    def run(*args: str, config: Path) -> Run:
        capsys.readouterr()
        code = main([*args, "--config", str(config)])
        out = capsys.readouterr()
        return Run(code, out.out, out.err)

    return run


def png(width: int, height: int) -> bytes:
    image = Image.merge(
        "RGB", [Image.effect_noise((width, height), sigma).convert("L") for sigma in (40, 60, 80)]
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def mail_with_screenshot() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Maria Lopez <maria@customer.example>"
    msg["To"] = "support@smilepass.example"
    msg["Subject"] = "The ADD button does nothing (screenshot)"
    msg["Message-ID"] = "<shot-1@customer.example>"
    msg.set_content("See the screenshot.")
    msg.add_attachment(png(800, 600), maintype="image", subtype="png", filename="add-button.png")
    msg.add_attachment(b"%PDF-1.4\n%log\n", maintype="application", subtype="pdf", filename="log.pdf")
    return msg.as_bytes()


def config_with_blobs(tmp_path: Path, database_url: str, blobs: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    config = write_config(tmp_path, database_url)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[storage]\n", f'[storage]\nblobs = "{blobs}"\n'), encoding="utf-8")
    return config


def test_migrate_moves_every_blob_and_screenshots_read_back_from_either_store(
    database_url: str, tmp_path: Path, ticketgate: Any
) -> None:
    on_dir = config_with_blobs(tmp_path, database_url, "dir")
    mail = tmp_path / "shot.eml"
    mail.write_bytes(mail_with_screenshot())
    assert ticketgate("ingest", str(mail), config=on_dir).returncode == 0
    from_dir = tmp_path / "from-dir.png"
    shot = ticketgate("tickets", "screenshot", "SP-1", "1", "--out", str(from_dir), config=on_dir)
    assert shot.returncode == 0, shot.stderr
    folder = FileBlobStore(tmp_path / "blobs")
    names = sorted(folder.names())
    assert len(names) == 3  # the screenshot, its thumbnail, the PDF

    moved = ticketgate("storage", "migrate", "--to", "database", config=on_dir)
    assert moved.returncode == 0, moved.stderr
    assert "copied 3 blob(s)" in moved.stdout and "0 were there already" in moved.stdout
    assert 'set storage.blobs = "database"' in moved.stdout
    again = ticketgate("storage", "migrate", "--to", "database", config=on_dir)
    assert "copied 0 blob(s)" in again.stdout and "3 were there already" in again.stdout

    # The folder gone, the config naming the database: the same screenshot, byte for byte.
    for name in names:
        folder.path_of(name).unlink()
    on_database = config_with_blobs(tmp_path / "db", database_url, "database")
    from_database = tmp_path / "from-database.png"
    read = ticketgate("tickets", "screenshot", "SP-1", "1", "--out", str(from_database), config=on_database)
    assert read.returncode == 0, read.stderr
    assert from_database.read_bytes() == from_dir.read_bytes()

    # Back to a folder, resumed after an interruption: only what is missing is copied.
    back_dir = tmp_path / "db" / "blobs"
    engine = make_engine(database_url)
    try:
        FileBlobStore(back_dir).put(DatabaseBlobStore(engine).get(names[0]))
    finally:
        engine.dispose()
    back = ticketgate("storage", "migrate", "--to", "dir", config=on_database)
    assert back.returncode == 0, back.stderr
    assert "copied 2 blob(s)" in back.stdout and "1 were there already" in back.stdout
    assert sorted(FileBlobStore(back_dir).names()) == names


def test_migrate_says_which_blobs_tickets_name_that_neither_store_has(
    database_url: str, tmp_path: Path, ticketgate: Any
) -> None:
    on_dir = config_with_blobs(tmp_path, database_url, "dir")
    mail = tmp_path / "shot.eml"
    mail.write_bytes(mail_with_screenshot())
    assert ticketgate("ingest", str(mail), config=on_dir).returncode == 0
    folder = FileBlobStore(tmp_path / "blobs")
    lost = sorted(folder.names())[0]
    folder.path_of(lost).unlink()  # a disk that lost a file

    moved = ticketgate("storage", "migrate", "--to", "database", config=on_dir)
    assert moved.returncode == 65
    assert "copied 2 blob(s)" in moved.stdout
    assert "1 blob(s) that tickets name are not in the database" in moved.stderr and lost in moved.stderr


def test_migrate_leaves_a_damaged_blob_behind_names_it_and_copies_the_rest(
    database_url: str, tmp_path: Path, ticketgate: Any
) -> None:
    on_dir = config_with_blobs(tmp_path, database_url, "dir")
    mail = tmp_path / "shot.eml"
    mail.write_bytes(mail_with_screenshot())
    assert ticketgate("ingest", str(mail), config=on_dir).returncode == 0
    folder = FileBlobStore(tmp_path / "blobs")
    damaged = sorted(folder.names())[0]
    data = bytearray(folder.path_of(damaged).read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit on disk
    folder.path_of(damaged).write_bytes(bytes(data))

    moved = ticketgate("storage", "migrate", "--to", "database", config=on_dir)

    assert moved.returncode == 65, moved.stderr
    assert "Traceback" not in moved.stderr
    assert "copied 2 blob(s)" in moved.stdout
    assert f"1 blob(s) in folder {folder.root} are damaged" in moved.stderr and damaged in moved.stderr
    engine = make_engine(database_url)
    try:
        assert not DatabaseBlobStore(engine).exists(damaged)  # the damage did not spread
    finally:
        engine.dispose()
