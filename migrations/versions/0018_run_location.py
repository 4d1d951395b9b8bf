"""``runs.location`` and ``runs.location_key``: the job's source code location as the run's own events give it
(the latest of them that sends a ``sourceCodeLocation`` facet), which names the run's job version. It was read
from the job's row, which holds whatever the latest event of *any* run of the job said when the run finished:
a job version that depended on the order events arrived in.

Runs stored before take the location of their job version (the best the model knows of them), with no key, so
any event of the run that sends the facet replaces it; ``headwater reindex`` rebuilds them from their events.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    event_key = sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("location", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("location_key", event_key, nullable=False, server_default=""))
    # Only the runs whose job version has a location are written (usually none: few integrations send one).
    op.execute(
        "UPDATE runs SET location = (SELECT v.location FROM job_versions v WHERE v.id = runs.job_version_id) "
        "WHERE job_version_id IN (SELECT id FROM job_versions WHERE location IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("location_key")
        batch_op.drop_column("location")
