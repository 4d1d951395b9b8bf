"""The event log: events are acknowledged once stored and applied to the model afterwards, in batches.

``applied_at`` is NULL while an event waits for the applier; the partial index holds only those rows, so
claiming the next batch and the read barrier's check stay cheap however long the log grows. Every event
stored before this revision was applied in its own transaction: it counts as applied when it was received.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_UNAPPLIED = sa.text("applied_at IS NULL")


def upgrade() -> None:
    op.add_column("lineage_events", sa.Column("applied_at", app.db.types.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE lineage_events SET applied_at = received_at")
    op.create_index(
        "ix_lineage_events_unapplied",
        "lineage_events",
        ["id"],
        postgresql_where=_UNAPPLIED,
        sqlite_where=_UNAPPLIED,
    )


def downgrade() -> None:
    op.drop_index("ix_lineage_events_unapplied", table_name="lineage_events")
    with op.batch_alter_table("lineage_events") as batch:
        batch.drop_column("applied_at")
