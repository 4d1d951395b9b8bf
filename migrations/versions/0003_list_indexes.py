"""Indexes for the Marquez list endpoints: jobs by last update, a job's runs newest first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 12:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_updated", ["updated_at"], unique=False)
        batch_op.create_index("ix_jobs_namespace_updated", ["namespace_id", "updated_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_runs_job_recent",
            "runs",
            ["job_id", sa.text("started_at DESC NULLS LAST"), sa.text("created_at DESC")],
            unique=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_runs_job_recent", table_name="runs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_namespace_updated")
        batch_op.drop_index("ix_jobs_updated")
