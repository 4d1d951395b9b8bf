"""Engine construction and transactions, the same API on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event

from app.db import json as json_codec
from app.settings import Settings

BINARY_RESULTS = "binary_results"


def create_db_engine(settings: Settings) -> Engine:
    url = settings.sqlalchemy_url
    common = {"json_serializer": json_codec.dumps, "json_deserializer": json_codec.loads}
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60}, **common)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
        **common,
    )
    _configure_postgres(engine)
    return engine


def _configure_postgres(engine: Engine) -> None:
    # Sessions in UTC: psycopg then tags every timestamptz with datetime.UTC itself (not a ZoneInfo of the
    # server's zone), which UTCDateTime passes through as is instead of converting each value.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        dbapi_connection.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.autocommit = autocommit

    # Statements run with execution_options(binary_results=True) fetch their rows in Postgres' binary format:
    # ids and timestamps decode without parsing text (for reads of tens of thousands of rows, e.g. backfill
    # plans). The same Python values either way.
    @event.listens_for(engine, "do_execute")
    def _binary_results(cursor, statement, parameters, context):
        if context.execution_options.get(BINARY_RESULTS):
            cursor.execute(statement, parameters, binary=True)
            return True
        return None


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling is turned off so that SQLAlchemy's "begin" hook decides how a
    # transaction starts: writers take the lock up front (BEGIN IMMEDIATE) and wait for it for up to
    # busy_timeout, instead of failing half-way with "database is locked".
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection):
        write = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed on success, rolled back on any error."""
    with engine.connect().execution_options(write=True) as connection:
        with connection.begin():
            yield connection


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """One read transaction that sees one moment: a page and its totalCount (two statements) agree even while
    the applier commits between them. Postgres' default (READ COMMITTED) takes a snapshot per statement, so reads
    ask for REPEATABLE READ; SQLite's transaction already reads one snapshot."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection
