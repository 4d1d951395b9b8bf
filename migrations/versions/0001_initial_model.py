"""Initial model: raw events, namespaces, sources, datasets (+ versions, fields, symlinks), jobs (+ versions),
runs (+ states, IO), facets, column lineage and the current lineage edges.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 11:07:35.653843
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "facets",
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("facet", app.db.types.JSONType, nullable=True),
        sa.Column("event_key", sa.String(length=128), nullable=False),
        sa.Column("lineage_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("entity_id", "name", name=op.f("pk_facets")),
    )
    with op.batch_alter_table("facets", schema=None) as batch_op:
        batch_op.create_index("ix_facets_kind_name", ["kind", "name"], unique=False)

    op.create_table(
        "lineage_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_hash", sa.String(length=64), nullable=False),
        sa.Column("event_kind", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=True),
        sa.Column("event_time", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_namespace", sa.String(length=1024), nullable=True),
        sa.Column("job_name", sa.String(length=1024), nullable=True),
        sa.Column("dataset_namespace", sa.String(length=1024), nullable=True),
        sa.Column("dataset_name", sa.String(length=1024), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("producer", sa.Text(), nullable=True),
        sa.Column("payload", app.db.types.JSONType, nullable=False),
        sa.Column("received_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("apply_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_events")),
        sa.UniqueConstraint("event_hash", name=op.f("uq_lineage_events_event_hash")),
    )
    with op.batch_alter_table("lineage_events", schema=None) as batch_op:
        batch_op.create_index("ix_lineage_events_event_time", ["event_time"], unique=False)
        batch_op.create_index("ix_lineage_events_job", ["job_namespace", "job_name"], unique=False)
        batch_op.create_index("ix_lineage_events_run_id", ["run_id"], unique=False)

    op.create_table(
        "namespaces",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("owner_name", sa.String(length=255), server_default="anonymous", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_namespaces")),
        sa.UniqueConstraint("name", name=op.f("uq_namespaces_name")),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("connection_url", sa.Text(), server_default="", nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("name", name=op.f("uq_sources_name")),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("namespace_id", sa.Uuid(), nullable=False),
        sa.Column("namespace_name", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("physical_name", sa.String(length=1024), nullable=False),
        sa.Column("type", sa.String(length=32), server_default="DB_TABLE", nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("source_name", sa.String(length=1024), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("current_version_id", sa.Uuid(), nullable=True),
        sa.Column("current_version_key", sa.String(length=128), server_default="", nullable=False),
        sa.Column("last_modified_at", app.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_lifecycle_state", sa.String(length=32), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("is_hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"], ["namespaces.id"], name=op.f("fk_datasets_namespace_id_namespaces"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_datasets_source_id_sources"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.create_index("uq_datasets_namespace_name", ["namespace_id", "name"], unique=True)

    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("namespace_id", sa.Uuid(), nullable=False),
        sa.Column("namespace_name", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("simple_name", sa.String(length=1024), nullable=False),
        sa.Column("parent_job_id", sa.Uuid(), nullable=True),
        sa.Column("type", sa.String(length=16), server_default="BATCH", nullable=False),
        sa.Column("integration", sa.String(length=64), nullable=True),
        sa.Column("job_type", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("current_version_id", sa.Uuid(), nullable=True),
        sa.Column("current_version_key", sa.String(length=128), server_default="", nullable=False),
        sa.Column("current_run_id", sa.Uuid(), nullable=True),
        sa.Column("current_run_key", sa.String(length=128), server_default="", nullable=False),
        sa.Column("symlink_target_id", sa.Uuid(), nullable=True),
        sa.Column("is_hidden", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"], ["namespaces.id"], name=op.f("fk_jobs_namespace_id_namespaces"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_job_id"], ["jobs.id"], name=op.f("fk_jobs_parent_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["symlink_target_id"], ["jobs.id"], name=op.f("fk_jobs_symlink_target_id_jobs"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_parent_job_id", ["parent_job_id"], unique=False)
        batch_op.create_index("uq_jobs_namespace_name", ["namespace_id", "name"], unique=True)

    op.create_table(
        "column_lineage",
        sa.Column("output_version_id", sa.Uuid(), nullable=False),
        sa.Column("output_field", sa.String(), nullable=False),
        sa.Column("input_dataset_id", sa.Uuid(), nullable=False),
        sa.Column("input_field", sa.String(), nullable=False),
        sa.Column("output_dataset_id", sa.Uuid(), nullable=False),
        sa.Column("transformation_description", sa.Text(), nullable=True),
        sa.Column("transformation_type", sa.String(length=64), nullable=True),
        sa.Column("transformation_subtype", sa.String(length=64), nullable=True),
        sa.Column("transformations", app.db.types.JSONType, nullable=True),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["input_dataset_id"],
            ["datasets.id"],
            name=op.f("fk_column_lineage_input_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["output_dataset_id"],
            ["datasets.id"],
            name=op.f("fk_column_lineage_output_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "output_version_id", "output_field", "input_dataset_id", "input_field", name=op.f("pk_column_lineage")
        ),
    )
    with op.batch_alter_table("column_lineage", schema=None) as batch_op:
        batch_op.create_index("ix_column_lineage_input", ["input_dataset_id", "input_field"], unique=False)
        batch_op.create_index("ix_column_lineage_output_dataset", ["output_dataset_id"], unique=False)

    op.create_table(
        "dataset_fields",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_key", sa.String(length=128), server_default="", nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_fields_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_fields")),
    )
    with op.batch_alter_table("dataset_fields", schema=None) as batch_op:
        batch_op.create_index("uq_dataset_fields_dataset_name", ["dataset_id", "name"], unique=True)

    op.create_table(
        "dataset_symlinks",
        sa.Column("namespace_name", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_symlinks_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("namespace_name", "name", name=op.f("pk_dataset_symlinks")),
    )
    with op.batch_alter_table("dataset_symlinks", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_symlinks_dataset_id", ["dataset_id"], unique=False)

    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("namespace_name", sa.String(length=1024), nullable=False),
        sa.Column("dataset_name", sa.String(length=1024), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("schema_version_id", sa.Uuid(), nullable=True),
        sa.Column("fields", app.db.types.JSONType, nullable=False),
        sa.Column("lifecycle_state", sa.String(length=32), nullable=True),
        sa.Column("external_version", sa.String(length=1024), nullable=True),
        sa.Column("source_name", sa.String(length=1024), nullable=True),
        sa.Column("published_key", sa.String(length=128), server_default="", nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_versions_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
    )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_versions_dataset", ["dataset_id", "created_at"], unique=False)
        batch_op.create_index("ix_dataset_versions_published", ["dataset_id", "published_key"], unique=False)
        batch_op.create_index("ix_dataset_versions_run_id", ["run_id"], unique=False)

    op.create_table(
        "job_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("namespace_name", sa.String(length=1024), nullable=False),
        sa.Column("job_name", sa.String(length=1024), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("latest_run_id", sa.Uuid(), nullable=True),
        sa.Column("latest_run_key", sa.String(length=128), server_default="", nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_versions_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_versions")),
    )
    with op.batch_alter_table("job_versions", schema=None) as batch_op:
        batch_op.create_index("ix_job_versions_job", ["job_id", "created_at"], unique=False)

    op.create_table(
        "lineage_edges",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("io_type", sa.String(length=8), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_key", sa.String(length=128), nullable=False),
        sa.Column("last_run_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_lineage_edges_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_lineage_edges_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "dataset_id", "io_type", name=op.f("pk_lineage_edges")),
    )
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.create_index("ix_lineage_edges_dataset", ["dataset_id", "io_type"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("namespace_name", sa.String(length=1024), nullable=False),
        sa.Column("job_name", sa.String(length=1024), nullable=False),
        sa.Column("job_version_id", sa.Uuid(), nullable=True),
        sa.Column("parent_run_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_rank", sa.Integer(), nullable=False),
        sa.Column("state_key", sa.String(length=128), nullable=False),
        sa.Column("transitioned_at", app.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", app.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", app.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("nominal_start_time", app.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("nominal_end_time", app.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("nominal_key", sa.String(length=128), server_default="", nullable=False),
        sa.Column("created_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_runs_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_job_nominal", ["job_id", "nominal_start_time"], unique=False)
        batch_op.create_index("ix_runs_job_started", ["job_id", "started_at"], unique=False)
        batch_op.create_index("ix_runs_parent_run_id", ["parent_run_id"], unique=False)

    op.create_table(
        "job_version_io",
        sa.Column("job_version_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("io_type", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_job_version_io_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_version_id"],
            ["job_versions.id"],
            name=op.f("fk_job_version_io_job_version_id_job_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_version_id", "dataset_id", "io_type", name=op.f("pk_job_version_io")),
    )
    op.create_table(
        "run_io",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("io_type", sa.String(length=8), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dataset_version_id", sa.Uuid(), nullable=False),
        sa.Column("event_key", sa.String(length=128), nullable=False),
        sa.Column("version_key", sa.String(length=128), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_run_io_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_io_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "dataset_id", "io_type", name=op.f("pk_run_io")),
        sa.UniqueConstraint("id", name=op.f("uq_run_io_id")),
    )
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.create_index("ix_run_io_dataset", ["dataset_id", "io_type"], unique=False)
        batch_op.create_index("ix_run_io_version", ["dataset_version_id"], unique=False)

    op.create_table(
        "run_states",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("lineage_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("transitioned_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_states_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "lineage_event_id", name=op.f("pk_run_states")),
    )


def downgrade() -> None:
    op.drop_table("run_states")
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.drop_index("ix_run_io_version")
        batch_op.drop_index("ix_run_io_dataset")

    op.drop_table("run_io")
    op.drop_table("job_version_io")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_parent_run_id")
        batch_op.drop_index("ix_runs_job_started")
        batch_op.drop_index("ix_runs_job_nominal")

    op.drop_table("runs")
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_edges_dataset")

    op.drop_table("lineage_edges")
    with op.batch_alter_table("job_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_job_versions_job")

    op.drop_table("job_versions")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_versions_run_id")
        batch_op.drop_index("ix_dataset_versions_published")
        batch_op.drop_index("ix_dataset_versions_dataset")

    op.drop_table("dataset_versions")
    with op.batch_alter_table("dataset_symlinks", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_symlinks_dataset_id")

    op.drop_table("dataset_symlinks")
    with op.batch_alter_table("dataset_fields", schema=None) as batch_op:
        batch_op.drop_index("uq_dataset_fields_dataset_name")

    op.drop_table("dataset_fields")
    with op.batch_alter_table("column_lineage", schema=None) as batch_op:
        batch_op.drop_index("ix_column_lineage_output_dataset")
        batch_op.drop_index("ix_column_lineage_input")

    op.drop_table("column_lineage")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("uq_jobs_namespace_name")
        batch_op.drop_index("ix_jobs_parent_job_id")

    op.drop_table("jobs")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index("uq_datasets_namespace_name")

    op.drop_table("datasets")
    op.drop_table("sources")
    op.drop_table("namespaces")
    with op.batch_alter_table("lineage_events", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_events_run_id")
        batch_op.drop_index("ix_lineage_events_job")
        batch_op.drop_index("ix_lineage_events_event_time")

    op.drop_table("lineage_events")
    with op.batch_alter_table("facets", schema=None) as batch_op:
        batch_op.drop_index("ix_facets_kind_name")

    op.drop_table("facets")
