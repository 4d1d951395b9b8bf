"""``dataset_fields`` holds only the fields the API tagged. A dataset's fields are its current version's schema
(``dataset_versions.fields``), which is what the API has always shown; ingest no longer keeps a copy of every
field of every published version with the key of the event that last set it (twenty upserts per completion
that nothing read). The copy's untagged rows go, with the key column and the free space left for its updates.

Downgrade brings the column back empty: the rows removed here are not restored (the earlier code writes them
again as versions are published, and ``headwater reindex`` rebuilds them).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM dataset_fields WHERE id NOT IN (SELECT dataset_field_id FROM dataset_field_tags)")
    # Plain ALTER TABLE on both databases (SQLite >= 3.35): a batch rebuild of the table on SQLite would drop
    # the old table, and with it, through ON DELETE CASCADE, the field tags this keeps.
    op.execute("ALTER TABLE dataset_fields DROP COLUMN event_key")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dataset_fields RESET (fillfactor)")


def downgrade() -> None:
    op.add_column("dataset_fields", sa.Column("event_key", sa.String(length=128), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE dataset_fields SET (fillfactor = 75)")
