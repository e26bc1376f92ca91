"""The statements every mail runs, on the DB-API cursor: a Core statement compiled once per dialect
and set of keys, then executed without SQLAlchemy's execution machinery.

Through `Connection.execute` a statement built once still costs SQLAlchemy's cache-key lookup,
execution context, parameter processing and result object on every call: many times the
database's own work for the one-row inserts and lookups of a mail (running the dozen of a mail
here saved 6.8 % of its instructions: docs/performance/instructions-and-suite.md). Here each
`Direct` statement is compiled by SQLAlchemy itself for the connection's dialect and kept: the
SQL text, the order of its binds, each bind's conversion (a datetime to SQLite's text, JSON to
text, …) and the Python-side column defaults it fills in. Running it is building the argument
tuple (or dict) and one `cursor.execute`: the rows written are the ones `Connection.execute`
writes, on SQLite and PostgreSQL alike (tests/integration/test_direct_statements.py).

It runs on the session's own connection, in its transaction. A DB-API error is handed to that
connection's own error handling, so callers see SQLAlchemy's exceptions (and a lost connection is
invalidated) exactly as before. A connection with execute listeners (explain's `numbers_kept` on
PostgreSQL) or no longer usable runs the statement through `Connection.execute` instead, so
those listeners see it and the connection's state is reported as usual.

The store stays the only place that speaks SQL: these are built from its own Core statements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from gateway.store.rows import connection, in_transaction


@dataclass(frozen=True)
class Done:
    """What a statement gave back: the rows it returned, the rows it changed, the id it inserted."""

    rows: list[tuple[Any, ...]]
    rowcount: int
    inserted_id: Any = None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self.rows[0][0] if self.rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # the binds in order for a positional paramstyle; None: named
    escaped: Mapping[str, str]  # bind name -> the name the SQL text uses, where they differ
    processors: Mapping[str, Callable[[Any], Any]]
    constants: Mapping[str, Any]  # binds with a value of their own, converted already
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # binds SQLAlchemy fills from column defaults
    returns_rows: bool
    id_from_rows: bool  # the inserted id comes back as the statement's one row (RETURNING)
    id_from_lastrowid: bool


class Direct:
    """A Core statement built once (at import), run on the DB-API cursor."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        # By the dialect and driver (every engine of the store is made by `make_engine`, alike),
        # and the keys in the order given: a caller builds its parameters the same way every time.
        self._compiled: dict[tuple[str, str, tuple[str, ...], bool], _Compiled] = {}

    def compiled(self, dialect: Dialect, keys: tuple[str, ...], many: bool) -> _Compiled:
        key = (dialect.name, dialect.driver, keys, many)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _compile(self.statement, dialect, frozenset(keys), many)
        return found


def run(session: Session, direct: Direct, params: Mapping[str, Any] | None = None) -> Done:
    """`direct` with `params`, in the session's transaction."""
    conn = connection(session)
    return _run(conn, _through_sqlalchemy(session, conn), direct, params or {})


def run_on(conn: Connection, direct: Direct, params: Mapping[str, Any] | None = None) -> Done:
    """`direct` with `params`, in the transaction of `conn` (a connection with no session: a
    transaction of one statement or two, where a session's set-up cost more than they do)."""
    return _run(conn, conn.invalidated or has_execute_listeners(conn), direct, params or {})


def _run(conn: Connection, through_sqlalchemy: bool, direct: Direct, params: Mapping[str, Any]) -> Done:
    if through_sqlalchemy:
        return _done(conn.execute(direct.statement, dict(params)), many=False)
    compiled = direct.compiled(conn.dialect, tuple(params), False)
    args = _arguments(compiled, params)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, args)
        rows = [tuple(row) for row in cursor.fetchall()] if compiled.returns_rows else []
        inserted = None
        if compiled.id_from_rows:
            inserted = rows[0][0]
        elif compiled.id_from_lastrowid:
            inserted = cursor.lastrowid
        done = Done(rows, cursor.rowcount, inserted)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, compiled.sql, args, cursor, None)  # raises SQLAlchemy's
    cursor.close()
    return done


def run_many(session: Session, direct: Direct, rows: Sequence[Mapping[str, Any]]) -> int:
    """`direct` once for each of `rows` (an executemany; all with the same keys), in the session's
    transaction; the rows they changed, together. (psycopg sends them all in one round trip.)"""
    if not rows:
        return 0
    conn = connection(session)
    if _through_sqlalchemy(session, conn):
        # One by one: an executemany's rowcount is not reported alike by every driver there.
        return sum(conn.execute(direct.statement, dict(row)).rowcount for row in rows)
    if len(rows) == 1:  # (an executemany of one costs psycopg a pipeline set up for nothing)
        return _run(conn, False, direct, rows[0]).rowcount
    compiled = direct.compiled(conn.dialect, tuple(rows[0]), True)
    args = [_arguments(compiled, row) for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(compiled.sql, args)
        changed = int(cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, compiled.sql, args, cursor, None)  # raises SQLAlchemy's
    cursor.close()
    return changed


_LISTENED = "direct.listened"  # in_transaction(session): whether the connection has execute listeners


def _through_sqlalchemy(session: Session, conn: Connection) -> bool:
    """Listeners that must see the statement, or a connection SQLAlchemy must report on. Whether
    there are listeners is asked once per transaction (it is a dozen attribute lookups, asked of
    every statement): who adds one inside a transaction forgets the answer (`forget_listeners`)."""
    if conn.invalidated:
        return True
    kept = in_transaction(session)
    listened: bool | None = kept.get(_LISTENED)
    if listened is None:
        listened = kept[_LISTENED] = has_execute_listeners(conn)
    return listened


def has_execute_listeners(conn: Connection) -> bool:
    """Whether `conn` has execute listeners (which must see every statement)."""
    dispatch = conn.dispatch
    return bool(
        dispatch.before_execute
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or dispatch.after_execute
    )


def forget_listeners(session: Session) -> None:
    """Execute listeners were added to (or removed from) the session's connection: ask again."""
    in_transaction(session).pop(_LISTENED, None)


def _arguments(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = {**compiled.constants, **params} if compiled.constants else dict(params)
    for name, default in compiled.defaults:
        values[name] = default()
    for name, process in compiled.processors.items():
        value = values[name]
        if value is not None:
            values[name] = process(value)
    if compiled.names is not None:
        return tuple([values[name] for name in compiled.names])
    escaped = compiled.escaped
    return {escaped.get(name, name): value for name, value in values.items()} if escaped else values


def _compile(statement: Executable, dialect: Dialect, keys: frozenset[str], many: bool) -> _Compiled:
    """What SQLAlchemy itself compiles `statement` to for these keys, and what it would do around
    the cursor call; anything this module does not do the way SQLAlchemy would is refused here,
    at the first call, not written differently."""
    compiled: Any = statement.compile(dialect=dialect, column_keys=sorted(keys), for_executemany=many)
    if any(bind.expanding for bind in compiled.binds.values()):
        raise TypeError("an expanding IN is compiled per call: run it through SQLAlchemy")
    if compiled.update_prefetch:
        raise TypeError("columns SQLAlchemy computes at execution: run it through SQLAlchemy")
    defaults: list[tuple[str, Callable[[], Any]]] = []
    for column in compiled.insert_prefetch:
        default = column.default
        if default is None or not (default.is_scalar or default.is_callable):
            raise TypeError(f"column {column.key} has a default computed in SQL: pass it")
        if default.is_scalar:
            defaults.append((column.key, lambda value=default.arg: value))
        else:
            defaults.append((column.key, lambda make=default.arg: make(None)))
    is_select = bool(getattr(compiled.statement, "is_select", False))
    result_columns = compiled._result_columns if is_select or compiled.effective_returning else []
    for _, _, _, type_ in result_columns:
        if type_._cached_result_processor(dialect, None) is not None:
            raise TypeError(f"a result column of type {type_} is converted: run it through SQLAlchemy")
    processors = {name: process for name, process in compiled._bind_processors.items() if process}
    filled = {name for name, _ in defaults}
    # Binds with a value of their own (literals, `.values(state=DONE)`), converted once here.
    constants = {
        name: processors[name](value) if value is not None and name in processors else value
        for name, value in compiled.construct_params({key: None for key in keys}).items()
        if name not in keys and name not in filled
    }
    returning = bool(compiled.effective_returning)
    return _Compiled(
        sql=compiled.string,
        names=tuple(compiled.positiontup) if compiled.positional else None,
        escaped=dict(compiled.escaped_bind_names or {}),
        processors={name: process for name, process in processors.items() if name not in constants},
        constants=constants,
        defaults=tuple(defaults),
        returns_rows=is_select or returning,
        id_from_rows=bool(compiled.isinsert) and returning and not many,
        id_from_lastrowid=bool(compiled.isinsert) and bool(compiled.postfetch_lastrowid) and not many,
    )


def _done(result: Any, *, many: bool) -> Done:
    """The same answer from a statement SQLAlchemy ran."""
    rows = [tuple(row) for row in result.all()] if result.returns_rows else []
    inserted = None
    if not many and result.context.isinsert:
        try:
            inserted = result.inserted_primary_key[0]
        except InvalidRequestError:  # the statement's own RETURNING: the id is its row, as in `run`
            inserted = rows[0][0]
    return Done(rows, result.rowcount, inserted)
