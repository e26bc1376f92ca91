"""The statements every mail runs on the DB-API cursor (gateway/store/direct.py) write the rows
SQLAlchemy's own execution writes, on SQLite and PostgreSQL: the same mails processed twice, into
two fresh databases, once the direct way and once with a cursor listener on the engine (which
sends every statement through `Connection.execute`), give the same rows as the database stores
them (its own representation of times, JSON and bytes), once the times and random tokens of the
run are masked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from gateway.config import load_settings
from gateway.daemon.runtime import build_runtime
from gateway.domain import Envelope
from gateway.pipeline.processor import Outcome, Processor
from gateway.store import inbox as inbox_store
from gateway.store import tickets as ticket_store
from gateway.store.models import Base
from tests.helpers import make_mail, write_config

ENVELOPE = Envelope(
    mail_from="maria@customer.example", rcpt_tos=("support@smilepass.example",), source="smtp"
)


def mails() -> list[bytes]:
    """New tickets, a reply to the first by its Message-ID, one copying a colleague (a participant),
    the same mail twice (a duplicate) and an automated one (no acknowledgement)."""
    first = make_mail("Payment plan ADD button does nothing", message_id="<first@customer.example>")
    return [
        first,
        make_mail("Invoice 4711 is wrong", sender="Jon Berg <jon@customer.example>"),
        make_mail(
            "Re: Payment plan ADD button does nothing",
            "Still broken.\n",
            headers={"In-Reply-To": "<first@customer.example>", "References": "<first@customer.example>"},
        ),
        make_mail("Login fails", headers={"Cc": "Ana Silva <ana@customer.example>"}),
        first,
        make_mail("Nightly report", headers={"Auto-Submitted": "auto-generated"}, message_id="<n@x.example>"),
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh, empty databases of the same kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'direct.db'}", f"sqlite:///{tmp_path / 'through.db'}"
        return
    server = str(request.getfixturevalue("postgres_url"))
    names = [f"tg_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        urls = [make_url(server).set(database=name).render_as_string(hide_password=False) for name in names]
        yield urls[0], urls[1]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def process(
    folder: Path, url: str, raws: list[bytes], *, through_sqlalchemy: bool
) -> tuple[list[str], dict[str, list[str]]]:
    folder.mkdir()
    runtime = build_runtime(load_settings(write_config(folder, url), environ={}))
    try:
        if through_sqlalchemy:
            event.listen(runtime.inbox.engine, "before_cursor_execute", lambda *args: None)
        runtime.inbox.add_many([(raw, ENVELOPE) for raw in raws[:-1]])
        processor = Processor(runtime.deps, worker="test:worker")
        results = processor.process_available(limit=20)
        # The last one stored alone and claimed, as `ingest` stores a mail (a statement of its own).
        results += processor.process_batch(runtime.inbox.add_claimed([(raws[-1], ENVELOPE)], "test:worker"))
        return [r.outcome.value for r in results], stored_rows(runtime.inbox.engine)
    finally:
        runtime.close()


def stored_rows(engine: Any) -> dict[str, list[str]]:
    """Every row of every table as the DB-API gives it back (SQLite: with each value's storage
    class), times and the run's random tokens masked."""
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        for table in Base.metadata.sorted_tables:
            columns = [column.name for column in table.columns]
            order = ", ".join(column.name for column in table.primary_key.columns)
            if engine.dialect.name == "sqlite":
                kinds = ", ".join(f'typeof("{name}")' for name in columns)
                cursor.execute(f'SELECT *, {kinds} FROM "{table.name}" ORDER BY {order}')
            else:
                cursor.execute(f'SELECT * FROM "{table.name}" ORDER BY {order}')
            found[table.name] = [_masked(repr(tuple(row))) for row in cursor.fetchall()]
    return found


_MASKS = (
    (re.compile(r"datetime\.datetime\([^)]*\)"), "<time>"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d{6})?"), "<time>"),
    (re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d ([+-]\d{4}|GMT)"), "<date>"),
    (re.compile(r"\.[0-9a-f]{12}@"), ".<token>@"),
    (re.compile(r"=+\d{10,}=+"), "<boundary>"),
)


def _masked(value: str) -> str:
    for pattern, mask in _MASKS:
        value = pattern.sub(mask, value)
    return value


def test_the_direct_statements_write_the_rows_sqlalchemy_writes(
    tmp_path: Path, two_databases: tuple[str, str]
) -> None:
    direct_url, through_url = two_databases
    raws = mails()
    outcomes, direct = process(tmp_path / "direct", direct_url, raws, through_sqlalchemy=False)
    assert ticket_store._INSERT_TICKET._compiled, "the direct run did not take the direct way"
    assert inbox_store._INSERT_ROW_DIRECT._compiled, "nor for storing one mail"
    assert outcomes[:5] == [Outcome.TICKET, Outcome.TICKET, Outcome.REPLY, Outcome.TICKET, Outcome.DUPLICATE]
    through_outcomes, through = process(tmp_path / "through", through_url, raws, through_sqlalchemy=True)
    assert through_outcomes == outcomes
    assert direct.keys() == through.keys()
    for table in direct:
        assert direct[table] == through[table], table
    assert direct["tickets"] and direct["events"] and direct["outbox"] and direct["participants"]
