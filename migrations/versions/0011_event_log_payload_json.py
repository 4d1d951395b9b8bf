"""The event log keeps each raw event as Postgres ``json`` (its text, checked to be JSON) instead of ``jsonb``:
the log only ever reads a payload back whole, and converting it to ``jsonb`` was the largest cost of storing an
event before acknowledging it. SQLite stores JSON as text already.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 22:40:00
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "lineage_events",
            "payload",
            type_=postgresql.JSON(none_as_null=True),
            existing_type=postgresql.JSONB(none_as_null=True),
            existing_nullable=False,
            postgresql_using="payload::json",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "lineage_events",
            "payload",
            type_=postgresql.JSONB(none_as_null=True),
            existing_type=postgresql.JSON(none_as_null=True),
            existing_nullable=False,
            postgresql_using="payload::jsonb",
        )
