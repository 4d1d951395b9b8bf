"""Column types that behave the same on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on both databases.

    SQLite has no timezone type: values go in as naive UTC and come back tagged as UTC, so comparisons and
    ISO output are identical to Postgres' ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        zone = value.tzinfo
        if zone is UTC:  # Postgres sessions are in UTC (app.db.engine): the common case, nothing to do
            return value
        if zone is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on Postgres (indexable, compact), JSON text on SQLite. Python None is SQL NULL (not JSON null).
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# A document stored to be read back whole, never queried inside: Postgres' ``json`` (the text, checked to be
# JSON) rather than ``jsonb``, whose conversion was the biggest cost of storing a raw event in the log.
StoredJSONType = JSON(none_as_null=True).with_variant(PG_JSON(none_as_null=True), "postgresql")

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
