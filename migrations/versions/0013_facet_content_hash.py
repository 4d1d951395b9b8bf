"""``facets.facet_hash``: the content of a facet as the event sent it, so an event sending a stored facet again (a
job's facets on every run) updates only its key without sending the document for the server to parse. Rows
stored before have none: their next event writes the document once more and records it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 01:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("facets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facet_hash", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("facets", schema=None) as batch_op:
        batch_op.drop_column("facet_hash")
