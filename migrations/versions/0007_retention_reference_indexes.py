"""Indexes that let retention (`headwater purge`) ask "does anything still refer to this row?" by an index
probe instead of a scan: which runs use a job version, and which state history rows and facets name a raw
event (a raw event still named by a kept row is kept).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_runs_job_version_id", "runs", "job_version_id"),
    ("ix_run_states_lineage_event_id", "run_states", "lineage_event_id"),
    ("ix_facets_lineage_event_id", "facets", "lineage_event_id"),
)


def upgrade() -> None:
    for index, table, column in _INDEXES:
        op.create_index(index, table, [column], unique=False)


def downgrade() -> None:
    for index, table, _ in _INDEXES:
        op.drop_index(index, table_name=table)
