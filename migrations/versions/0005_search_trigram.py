"""Trigram indexes for search by name (Postgres only).

GET /search matches ``name ILIKE '%<q>%'`` on jobs and datasets (app/db/dialect.py: ``contains_ignoring_case``).
A B-tree cannot serve a pattern with a leading wildcard; a GIN index with pg_trgm's ``gin_trgm_ops`` can, for
LIKE and ILIKE alike (its trigrams are case-folded), so search stops scanning every name on large installations.
SQLite has no trigram index: there search stays a scan, the accepted fallback for a single-file install.

pg_trgm ships with PostgreSQL (the contrib package) and is a trusted extension (PostgreSQL 13+): the owner of
the database can create it without being superuser.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXES = (("ix_jobs_name_trgm", "jobs"), ("ix_datasets_name_trgm", "datasets"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index, table in _INDEXES:
        op.create_index(
            index, table, ["name"], unique=False, postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index, table in _INDEXES:
        op.drop_index(index, table_name=table)
    # The extension stays: it may have been there before 0005, or be used by something else since.
