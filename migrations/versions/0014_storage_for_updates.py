"""Postgres storage settings for the write path (SQLite has none of these):

* the tables whose rows ingest updates again and again (a dataset's fields and current version, a job's, edges,
  a run's reads and writes, job versions) leave a quarter of each page free (``fillfactor``), so an update
  that changes no indexed column stays on its page as a heap-only tuple and does not touch the indexes;
* the event log's payloads, 5–20 KiB each, are compressed with LZ4 instead of pglz where the server has it:
  about half the server's CPU to store one, which it does before acknowledging the event.

Both apply to rows written from now on.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Kept in step with ``postgresql_with`` in app/db/tables.py.
UPDATED_TABLES = ("dataset_fields", "datasets", "jobs", "job_versions", "lineage_edges", "run_io")
FILLFACTOR = 75


def _server_has_lz4() -> bool:
    bind = op.get_bind()
    query = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    return bool(bind.exec_driver_sql(query).scalar())


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in UPDATED_TABLES:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")
    if _server_has_lz4():
        op.execute("ALTER TABLE lineage_events ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in UPDATED_TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.execute("ALTER TABLE lineage_events ALTER COLUMN payload SET COMPRESSION DEFAULT")
