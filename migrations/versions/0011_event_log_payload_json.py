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
    _payload_as(postgresql.JSON(none_as_null=True), postgresql.JSONB(none_as_null=True), "json")


def downgrade() -> None:
    _payload_as(postgresql.JSONB(none_as_null=True), postgresql.JSON(none_as_null=True), "jsonb")


def _payload_as(new_type, old_type, cast: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "lineage_events",
            "payload",
            type_=new_type,
            existing_type=old_type,
            existing_nullable=False,
            postgresql_using=f"payload::{cast}",
        )
