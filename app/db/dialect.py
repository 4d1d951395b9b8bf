"""The only place that knows which database it is talking to.

Both SQLAlchemy dialects offer the same ``INSERT … ON CONFLICT`` construct (with ``excluded``), so the
services build one statement and this module picks the dialect's class for it. Error classification for
retries lives here too, and the substring match that search relies on an index for.
"""

from __future__ import annotations

import itertools
import struct
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from psycopg.types.json import Json
from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Select,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import NullType, TypeDecorator

from app.db import json as json_codec
from app.db.lockstep import LOCKSTEP, conflict_key

# SQLSTATEs worth retrying the whole transaction for: serialization failure, deadlock.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


def upsert(dialect: Connection | str, table: Table):
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on either database
    (``dialect`` is a connection or a dialect name)."""
    name = dialect if isinstance(dialect, str) else dialect.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def inserted_by_upsert(dialect: Connection | str, table: Table) -> ColumnElement[bool]:
    """For an upsert's RETURNING: whether the statement inserted the row (rather than updated one that was
    there). Postgres tells by the row's ``xmax`` (0 for a row this statement inserted); SQLite cannot tell, and
    says no, so a caller that skips work for new rows does that work there."""
    if _name(dialect) == "postgresql":
        return literal_column(f'"{table.name}".xmax = 0', Boolean).label("inserted")
    return literal(False, Boolean).label("inserted")


_UUID_OID, _UUID_ARRAY_OID = 2950, 2951


class _UuidArray(bytes):
    """A Postgres uuid[] already written in the binary wire format: psycopg sends it as is, typed uuid[], so
    the server plans with the values as it would with an adapted list. Binary, not text: Postgres reads each
    element as 16 bytes where it parsed the text form at ~0.6 us an element (a day-wide backfill plan sends
    ~35,000)."""


class _PassThrough(TypeDecorator):
    impl = NullType
    cache_ok = True


def _register_uuid_array_dumper() -> None:
    try:
        import psycopg
        from psycopg.adapt import Dumper
    except ImportError:  # SQLite-only installations
        return

    from psycopg.pq import Format

    class UuidArrayDumper(Dumper):
        oid = _UUID_ARRAY_OID
        format = Format.BINARY

        def dump(self, obj: bytes) -> bytes:
            return obj

    psycopg.adapters.register_dumper(_UuidArray, UuidArrayDumper)


_register_uuid_array_dumper()


def _name(dialect: Connection | str) -> str:
    return dialect if isinstance(dialect, str) else dialect.dialect.name


def _uuid_array(values: list[Any]) -> _UuidArray | None:
    """uuid.UUID or their canonical text (uuid_text), as a Postgres uuid[] parameter; None for other values.
    The driver adapts a list element by element in Python, which for the tens of thousands of run ids of a
    large backfill plan costs more than the query; here the work is a few passes in C over one string."""
    try:
        digits = [v if v.__class__ is str and len(v) == 36 else v.hex for v in values]
    except AttributeError:
        return None
    if not digits:
        return _UuidArray(struct.pack("!iii", 0, 0, _UUID_OID))
    # Each element: its length (16, as 4 bytes) then its 16 bytes; written as hex digits, decoded at once.
    try:
        elements = bytes.fromhex("00000010" + "00000010".join(digits).replace("-", ""))
    except ValueError:
        return None
    if len(elements) != 20 * len(digits):
        return None
    return _UuidArray(struct.pack("!iiiii", 1, 0, _UUID_OID, len(digits), 1) + elements)


def in_values(conn: Connection, column: ColumnElement, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)``. On Postgres it is ``column = ANY(:array)``: one parameter however many values,
    where an expanded IN list of thousands of ids costs more to build and parse than to run. Values of a uuid
    column may be uuid.UUID or their text (``uuid_text``)."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        if isinstance(column.type, Uuid):
            array = _uuid_array(values)
            if array is not None:  # one uuid[] parameter, already in the wire format
                return column == any_(bindparam(None, array, type_=_PassThrough()))
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    if isinstance(column.type, Uuid):
        values = _as_uuids(values)
    return column.in_(values)


def _as_uuids(values: list[Any]) -> list[Any]:
    """For SQLite, which binds uuid.UUID: ids given as their text (uuid_text) are turned back."""
    return [uuid.UUID(v) if isinstance(v, str) else v for v in values]


def in_param(dialect: Connection | str, column: ColumnElement, key: str) -> ColumnElement[bool]:
    """``in_values`` for a statement built once and run many times: the values come at execution, as the
    parameter ``key`` made by ``in_param_value``."""
    if _name(dialect) == "postgresql":
        return column == any_(
            bindparam(key, type_=_PassThrough() if isinstance(column.type, Uuid) else ARRAY(column.type))
        )
    return column.in_(bindparam(key, expanding=True))


def in_param_value(conn: Connection, column: ColumnElement, values: Iterable[Any]) -> Any:
    """The value of an ``in_param`` parameter: the values (uuid.UUID or their text for a uuid column)."""
    values = list(values)
    return uuid_param_value(conn, values) if isinstance(column.type, Uuid) else values


def uuid_param_value(conn: Connection, values: Iterable[Any]) -> Any:
    """``in_param_value`` for a uuid column: one uuid[] on Postgres, uuid.UUID values on SQLite."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        array = _uuid_array(values)
        if array is None:
            raise TypeError("uuid_param_value: the values are uuid.UUID or their text")
        return array
    return _as_uuids(values)


def uuid_text(conn: Connection | str, column: ColumnElement) -> ColumnElement[str]:
    """A uuid column as its canonical text (``str(uuid.UUID)``: 8-4-4-4-12 lower-case hex digits), written by
    the database. For reads of tens of thousands of ids that are only compared, looked up and shown (backfill
    plans), receiving a str costs a fraction of building a uuid.UUID; ``in_values`` takes them back as is."""
    if _name(conn) == "postgresql":
        return cast(column, String)
    # SQLite keeps a Uuid as its 32 hex digits (uuid.UUID.hex).
    part = [
        func.substr(column, start, length, type_=String)
        for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    ]
    dash = literal("-", String)
    return part[0] + dash + part[1] + dash + part[2] + dash + part[3] + dash + part[4]


def utc_timestamp(conn: Connection | str, column: ColumnElement) -> ColumnElement:
    """A UTCDateTime column read without its per-value Python conversion where the driver already returns what
    it would: Postgres sessions run in UTC (app.db.engine), so psycopg tags every timestamptz with datetime.UTC
    itself. SQLite returns naive values, which UTCDateTime tags. For reads of tens of thousands of timestamps."""
    if _name(conn) == "postgresql":
        return type_coerce(column, DateTime(timezone=True))
    return column


def newest_per_key(
    conn: Connection, keys: ColumnElement, rows: Select, key: ColumnElement, newest_first: ColumnElement, limit: int
) -> Select:
    """The ``limit`` first rows of ``rows`` (ordered by ``newest_first``) for each value of ``keys`` (a column
    of the table the keys live in, e.g. ``jobs.id``; ``key`` is the matching column of ``rows``).

    On Postgres it is one index probe per key (``LATERAL … LIMIT``), reading only the rows it returns however
    long the history; SQLite has no LATERAL, so there it ranks every row with a window (embedded installations
    are small)."""
    if conn.dialect.name == "postgresql":
        per_key = rows.where(key == keys).order_by(newest_first).limit(limit).lateral()
        return select(per_key).select_from(keys.table.join(per_key, true()))
    ranked = rows.add_columns(func.row_number().over(partition_by=key, order_by=newest_first).label("rank_")).subquery()
    return select(*[c for c in ranked.c if c.name != "rank_"]).where(ranked.c.rank_ <= limit)


def bulk_insert(conn: Connection, table: Table, rows: Iterable[dict[str, Any]], *, chunk: int = 5000) -> int:
    """Insert many rows fast: COPY on Postgres, batched executemany on SQLite. Every row has the same keys.
    For bulk loads (benchmarks, synthetic installations), not for ingest."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    columns = list(first)
    if conn.dialect.name == "postgresql":
        from psycopg.types.json import Jsonb

        json_columns = {c.name for c in table.columns if isinstance(c.type.dialect_impl(conn.dialect), JSON)}
        count = 0
        cursor = conn.connection.driver_connection.cursor()
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in itertools.chain([first], iterator):
                copy.write_row([Jsonb(row[c]) if c in json_columns else row[c] for c in columns])
                count += 1
        return count
    count = 0
    batch = [first]
    for row in iterator:
        batch.append(row)
        if len(batch) >= chunk:
            conn.execute(table.insert(), batch)
            count += len(batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)
        count += len(batch)
    return count


_RECORDSET_STATEMENTS: dict[tuple[Any, tuple[str, ...]], tuple[str, dict[str, Any], frozenset[str]]] = {}


_EXISTING_ONLY = "headwater_existing_only"


def existing_rows_only(stmt: Any, *matching: str) -> Any:
    """An upsert (``upsert`` … ``on_conflict_do_update``) that ``execute_rows`` runs only for the rows stored
    already with the same values of ``matching`` (a content hash): it updates what the clause says of those and
    nothing else, so such rows need not carry their large columns (a JSON document the server would parse only to
    find it unchanged). On Postgres each stored row is locked first (``FOR NO KEY UPDATE``), so it is still there
    when the clause updates it and nothing is ever inserted. Elsewhere it is not run and returns no rows: the
    caller writes every row with its whole content, as SQLite compares stored text as cheaply."""
    return stmt.execution_options(**{_EXISTING_ONLY: matching})


def rows_in_one_statement(conn: Connection | Engine) -> bool:
    """Whether ``execute_rows`` writes all its rows with one statement (Postgres), so that on a connection in
    autocommit mode they are one transaction; SQLite runs a statement per row, which needs a transaction."""
    return conn.dialect.name == "postgresql"


def execute_rows(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> Any:
    """Run an ``INSERT`` (with its ``ON CONFLICT …`` and ``RETURNING``, built with ``upsert``) for many rows in
    one statement whose text does not depend on how many rows there are. Every row has the same keys. Returns
    the result (the RETURNING rows).

    Postgres: ``INSERT … SELECT … FROM json_to_recordset(<the rows as one JSON document>)`` followed by the
    statement's own ``ON CONFLICT``/``RETURNING`` clause: parsed and planned once per session however many rows
    a call brings (executemany runs one statement per row; a multi-row VALUES is a new statement for each row
    count), and the rows travel as one parameter that orjson writes and the server parses, both in C (the
    driver adapts array parameters element by element in Python, which costs more than the statement). The
    rows must not conflict with one another (deduplicate on the conflict key first), as for any one statement.
    SQLite: the statement run for each row (executemany), which is what SQLite does for a multi-row statement.

    Called by a unit that runs in lockstep with others (app/db/lockstep.py), it returns a list of the RETURNING
    rows once the rows of every unit have been written together."""
    if not rows:
        return None
    lockstep = conn.info.get(LOCKSTEP)
    if lockstep is not None and lockstep.pausing():
        return lockstep.pause(stmt, rows)  # merged with the same statement of the other units (app/db/lockstep.py)
    if conn.dialect.name != "postgresql":
        if stmt.get_execution_options().get(_EXISTING_ONLY):
            return []
        return conn.execute(stmt, rows)
    return conn.exec_driver_sql(*rows_statement(conn, stmt, rows))


def rows_statement(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The SQL text and parameters with which ``execute_rows`` writes ``rows`` on Postgres."""
    table: Table = stmt.table
    columns = tuple(rows[0])
    key = (stmt, columns)
    cached = _RECORDSET_STATEMENTS.get(key)
    if cached is None:
        cached = _recordset_statement(conn, stmt, table, columns)
        _RECORDSET_STATEMENTS[key] = cached
    sql, constants, json_columns, decorated = cached
    if decorated or json_columns:
        rows = [dict(row) for row in rows]
        for row in rows:
            for name, column_type in decorated:
                row[name] = column_type.process_bind_param(row[name], conn.dialect)
            for name in json_columns:
                # Written on its own: a document orjson refuses (an integer beyond 64 bits) is kept as sent.
                if row[name] is not None and not isinstance(row[name], orjson.Fragment):  # encoded already
                    row[name] = orjson.Fragment(json_codec.dumps_bytes(row[name]))
    return sql, {**constants, "headwater_rows": orjson.dumps(rows).decode()}


def _recordset_statement(conn: Connection, stmt: Any, table: Table, columns: tuple[str, ...]):
    impls = {n: table.c[n].type.dialect_impl(conn.dialect) for n in columns}
    # Columns whose type processes bound values (uuid, time zone-aware timestamps…), done here per row.
    decorated = tuple((n, table.c[n].type) for n in columns if isinstance(table.c[n].type, TypeDecorator))
    json_columns = frozenset(n for n in columns if isinstance(impls[n], JSON))
    record = ", ".join(f'"{n}" {impls[n].compile(conn.dialect)}' for n in columns)
    # JSON null stands for SQL NULL (Python None), as the column type has it (none_as_null); ``json`` (unlike
    # ``jsonb``) has no equality operator.
    values = ", ".join(_recordset_value(n, impls[n]) if n in json_columns else f'r."{n}"' for n in columns)
    compiled = stmt.compile(dialect=conn.dialect)
    text_ = str(compiled)
    tail = text_[text_.index(" ON CONFLICT") :] if " ON CONFLICT" in text_ else ""
    # Values the clause itself carries (a literal in a CASE), which the compiler made parameters.
    constants = {name: value for name, value in compiled.params.items() if f"%({name})s" in tail}
    names = ", ".join(f'"{n}"' for n in columns)
    sql = (
        f'INSERT INTO "{table.name}" ({names}) SELECT {values} '
        f"FROM json_to_recordset(%(headwater_rows)s::json) AS r({record}){_existing_only(stmt, table)}{tail}"
    )
    return sql, constants, json_columns, decorated


def _existing_only(stmt: Any, table: Table) -> str:
    """The filter of an ``existing_rows_only`` statement: rows stored with the same key and matching values."""
    matching = stmt.get_execution_options().get(_EXISTING_ONLY)
    if not matching:
        return ""
    same = [f'x."{name}" = r."{name}"' for name in [*conflict_key(stmt), *matching]]
    return f' WHERE EXISTS (SELECT FROM "{table.name}" AS x WHERE {" AND ".join(same)} FOR NO KEY UPDATE)'


def _recordset_value(name: str, impl: Any) -> str:
    if isinstance(impl, JSONB):
        return f"NULLIF(r.\"{name}\", 'null'::jsonb)"
    return f'CASE WHEN json_typeof(r."{name}") = \'null\' THEN NULL ELSE r."{name}" END'


def insert_ignore_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that are not there yet (by any unique constraint), all in one statement whose text does not
    depend on how many rows there are. Every row has the same keys. For the event log's group commit.

    Postgres: ``INSERT … SELECT * FROM unnest(<one array per column>) ON CONFLICT DO NOTHING``, the arrays sent
    in binary. Each JSON document then reaches the server as its own array element and is parsed once (by the
    column's input); inside ``execute_rows``' one JSON document of rows it was parsed twice (the recordset, then
    the column): the server's CPU per stored event 0.27–0.31 → 0.17–0.19 ms for the benchmark's 15 KiB
    events. SQLite: the prepared statement for each row."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(_insert_ignore(conn.dialect.name, table), rows)
        return
    columns = tuple(rows[0])
    key = (table.name, columns)
    cached = _UNNEST_STATEMENTS.get(key)
    if cached is None:
        cached = _UNNEST_STATEMENTS[key] = _unnest_statement(conn, table, columns)
    sql, json_columns, decorated = cached
    arrays: dict[str, list[Any]] = {}
    for i, name in enumerate(columns):
        values = [row[name] for row in rows]
        if name in decorated:
            process = decorated[name]
            values = [process(value, conn.dialect) for value in values]
        elif name in json_columns:
            values = [None if value is None else Json(value, dumps=json_codec.dumps_bytes) for value in values]
        arrays[f"c{i}"] = values
    conn.exec_driver_sql(sql, arrays)


_UNNEST_STATEMENTS: dict[tuple[str, tuple[str, ...]], tuple[str, frozenset[str], dict[str, Any]]] = {}


def _unnest_statement(conn: Connection, table: Table, columns: tuple[str, ...]):
    impls = {n: table.c[n].type.dialect_impl(conn.dialect) for n in columns}
    json_columns = frozenset(n for n in columns if isinstance(impls[n], JSON))
    decorated = {n: table.c[n].type.process_bind_param for n in columns if isinstance(table.c[n].type, TypeDecorator)}

    def element_type(name: str) -> str:
        if name in json_columns:
            return "json"
        # Text of any length or collation: the column's own type applies on the way in.
        return "text" if isinstance(impls[name], String) else impls[name].compile(conn.dialect)

    names = ", ".join(f'"{n}"' for n in columns)
    arrays = ", ".join(f"%(c{i})b::{element_type(n)}[]" for i, n in enumerate(columns))
    sql = f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING'
    return sql, json_columns, decorated


_INSERT_IGNORE: dict[tuple[str, str], Any] = {}


def _insert_ignore(dialect_name: str, table: Table) -> Any:
    key = (dialect_name, table.name)
    if key not in _INSERT_IGNORE:
        _INSERT_IGNORE[key] = upsert(dialect_name, table).on_conflict_do_nothing()
    return _INSERT_IGNORE[key]


def serialize_on_all(conn: Connection, keys: Iterable[str]) -> None:
    """``serialize_on`` for many keys at once, taken in one global order (by the lock's number), so two
    transactions that each need several of the same keys wait for one another instead of deadlocking. One
    statement however many keys."""
    keys = sorted(set(keys))
    if conn.dialect.name != "postgresql" or not keys:
        return
    conn.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(lock_id)) FROM "
            "(SELECT hashtextextended(key, 0) AS lock_id FROM unnest(CAST(:keys AS text[])) AS key "
            "ORDER BY lock_id OFFSET 0) AS ordered"
        ),
        {"keys": keys},
    )


def contains_ignoring_case(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    """``column`` contains ``text`` in any case; ``%``, ``_`` and ``\\`` in ``text`` match themselves.

    Postgres: ``column ILIKE '%text%'``, which the pg_trgm GIN indexes on ``jobs.name`` and ``datasets.name``
    serve (migration 0005; keep the column bare, an index on ``name`` is not used for ``lower(name)``).
    SQLite: ``lower(column) LIKE lower('%text%')``, a scan.
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def declared_for(dialect_name: str):
    """An alembic ``include_object`` hook for comparing the tables with a database of ``dialect_name``: leaves
    out what app/db/tables.py declares for another database only (``.ddl_if(dialect=…)``, e.g. the Postgres
    trigram indexes), which the migrations rightly do not build there."""

    def include_object(obj, name, type_, reflected, compare_to) -> bool:
        ddl_if = getattr(obj, "_ddl_if", None)  # where SQLAlchemy keeps the arguments of .ddl_if()
        if ddl_if is None or ddl_if.dialect is None:
            return True
        wanted = (ddl_if.dialect,) if isinstance(ddl_if.dialect, str) else tuple(ddl_if.dialect)
        return dialect_name in wanted

    return include_object


def serialize_on(conn: Connection, key: str) -> None:
    """Make transactions that name the same ``key`` run one after another (Postgres: a transaction-scoped
    advisory lock; SQLite already runs one writer at a time). Taken first thing in a transaction, before any
    row lock, it cannot join a deadlock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def is_retryable(exc: BaseException) -> bool:
    """A failure that a retry of the same transaction can cure (lost a race, not bad data)."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    message = str(orig).lower()
    return isinstance(exc, OperationalError) and ("database is locked" in message or "busy" in message)


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (down, restarting, pool exhausted): the client should retry later."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        if exc.orig.__class__.__module__.startswith("sqlite3"):
            message = str(exc.orig).lower()
            return "unable to open database" in message or "disk i/o error" in message
        sqlstate = getattr(exc.orig, "sqlstate", None)
        # No SQLSTATE from psycopg: the connection itself failed. 08xxx: connection exception;
        # 57P0x: admin shutdown / crash shutdown / cannot connect now.
        return sqlstate is None or sqlstate.startswith("57P") or sqlstate.startswith("08")
    return False
