"""Alembic environment: one migration tree for SQLite and Postgres (batch mode for SQLite's ALTERs)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from app.db.dialect import declared_for
from app.db.engine import create_db_engine
from app.db.tables import metadata
from app.settings import Settings

# Serialises concurrent upgrades (several workers or replicas starting at once) on Postgres.
_MIGRATION_LOCK_ID = 7_461_002_371


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=declared_for(connection.dialect.name),
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_db_engine(Settings())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
