"""The only place that knows which database it is talking to.

Both SQLAlchemy dialects offer the same ``INSERT … ON CONFLICT`` construct (with ``excluded``), so the
services build one statement and this module picks the dialect's class for it. Error classification for
retries lives here too.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError

# SQLSTATEs worth retrying the whole transaction for: serialization failure, deadlock.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


def upsert(dialect: Connection | str, table: Table):
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on either database
    (``dialect`` is a connection or a dialect name)."""
    name = dialect if isinstance(dialect, str) else dialect.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


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
