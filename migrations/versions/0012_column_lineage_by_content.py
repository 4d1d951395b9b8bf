"""Column lineage is stored once per distinct content instead of once per dataset version: a run after run
publishing the same column lineage wrote the same rows again for every version. ``column_lineage`` is keyed by
``lineage_id`` (the output dataset and the rows' content) and each version points at its lineage with
``dataset_versions.column_lineage_id``. Existing rows keep their version's id as their lineage id (history is
not merged); the creation times the rows copied from their version go.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("column_lineage_id", sa.Uuid(), nullable=True))
        batch_op.create_index("ix_dataset_versions_column_lineage", ["column_lineage_id"], unique=False)
    op.execute(
        "UPDATE dataset_versions SET column_lineage_id = id WHERE id IN (SELECT output_version_id FROM column_lineage)"
    )
    with op.batch_alter_table("column_lineage", schema=None) as batch_op:
        batch_op.alter_column("output_version_id", new_column_name="lineage_id", existing_type=sa.Uuid())
        batch_op.drop_column("created_at")
        batch_op.drop_column("updated_at")


def downgrade() -> None:
    # Back to a copy of the rows per version that has them, dated as the version.
    with op.batch_alter_table("column_lineage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=True))
    columns = (
        "output_field, input_dataset_id, input_field, output_dataset_id, transformation_description, "
        "transformation_type, transformation_subtype, transformations"
    )
    op.execute(
        f"INSERT INTO column_lineage (lineage_id, {columns}) "
        f"SELECT v.id, {', '.join('c.' + c.strip() for c in columns.split(','))} "
        "FROM column_lineage c JOIN dataset_versions v ON v.column_lineage_id = c.lineage_id "
        "WHERE v.id <> c.lineage_id"
    )
    # What is left keyed by something other than a version: the shared sets, copied above.
    op.execute(
        "DELETE FROM column_lineage WHERE NOT EXISTS "
        "(SELECT 1 FROM dataset_versions v WHERE v.id = column_lineage.lineage_id "
        "AND v.column_lineage_id IS NOT NULL)"
    )
    op.execute(
        "UPDATE column_lineage SET "
        "created_at = (SELECT v.created_at FROM dataset_versions v WHERE v.id = column_lineage.lineage_id), "
        "updated_at = (SELECT v.created_at FROM dataset_versions v WHERE v.id = column_lineage.lineage_id)"
    )
    with op.batch_alter_table("column_lineage", schema=None) as batch_op:
        batch_op.alter_column("lineage_id", new_column_name="output_version_id", existing_type=sa.Uuid())
        batch_op.alter_column("created_at", nullable=False, existing_type=app.db.types.UTCDateTime(timezone=True))
        batch_op.alter_column("updated_at", nullable=False, existing_type=app.db.types.UTCDateTime(timezone=True))
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_versions_column_lineage")
        batch_op.drop_column("column_lineage_id")
