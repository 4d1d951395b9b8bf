"""Index for recent failures: runs by state, newest end first (GET /api/v1/runs/failures, the UI's home page).

Without it, listing the latest failed runs scans every run; with it, the newest FAILED runs are the tail of
one index range on both databases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_state_ended", ["state", "ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_state_ended")
