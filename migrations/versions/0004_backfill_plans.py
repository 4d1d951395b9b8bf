"""Saved backfill plans.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backfill_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("request", app.db.types.JSONType, nullable=False),
        sa.Column("plan", app.db.types.JSONType, nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_plans")),
    )
    op.create_index("ix_backfill_plans_created_at", "backfill_plans", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_backfill_plans_created_at", table_name="backfill_plans")
    op.drop_table("backfill_plans")
