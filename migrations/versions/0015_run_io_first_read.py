"""``run_io.first_read_at``: when a run first read a dataset, so a placeholder version (data read before any
writer was seen) dates from the earliest read of the runs that still read it, whatever order events came in.
Reads stored before take their placeholder's creation time: the best the model knows of them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_read_at", app.db.types.UTCDateTime(), nullable=True))
    op.execute(
        """
        UPDATE run_io SET first_read_at = (
            SELECT v.created_at FROM dataset_versions v
            WHERE v.id = run_io.dataset_version_id AND v.run_id IS NULL AND v.published_key = ''
        )
        WHERE io_type = 'INPUT'
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.drop_column("first_read_at")
