"""Event keys compare in byte order on Postgres (``COLLATE "C"``), whatever the database's collation.

Which of two values wins is decided in SQL by comparing their events' keys (``<event time>|<hash>``), and a
dataset reader's key starts with ``!`` so that it sorts below every writer's. Under a collation that ignores
punctuation at first (glibc's en_US.UTF-8, the default of the official postgres image and of most servers set
up in an English locale) ``!2024-11-02…`` sorted after ``2024-11-01…``: a reader's description of a dataset,
delivered before an earlier writer's, was kept. Byte order is also what SQLite and Python compare.

Existing rows keep their values; a model built on such a database may hold a reader's facet where a writer's
belongs: ``headwater reindex`` rebuilds it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 13:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

EVENT_KEY_COLUMNS = (
    ("datasets", "current_version_key"),
    ("dataset_versions", "published_key"),
    ("jobs", "current_version_key"),
    ("jobs", "current_run_key"),
    ("job_versions", "latest_run_key"),
    ("lineage_edges", "last_seen_key"),
    ("runs", "state_key"),
    ("runs", "nominal_key"),
    ("run_io", "event_key"),
    ("run_io", "version_key"),
    ("facets", "event_key"),
)


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in EVENT_KEY_COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(128) COLLATE "{collation}"')


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
