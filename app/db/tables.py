"""Every table of Headwater's model, in one module.

Ids are deterministic where the content names the row (namespaces, sources, datasets, jobs, fields,
versions): ingest computes them in Python, so one event needs no read-back of generated keys and two
processes inserting the same row agree on its id. See ``app/services/identifiers.py``.

Ordering of facts that arrive out of order is decided by an *event key* (``event_time|event_hash``, a
string that sorts like the event time and breaks ties deterministically): a value is replaced only by a
value from an event with a greater key, so any arrival order ends in the same model.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    false,
    text,
)

from app.db.types import BigIntPK, JSONType, StoredJSONType, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NAME = String(1024)
# Event keys are compared in SQL (a later event wins; a reader's "!" key sorts below every writer's): byte order,
# whatever the database's collation. glibc's en_US.UTF-8 ignores punctuation, and sorted "!2024-11-02…" after
# "2024-11-01…" (migration 0017). SQLite compares bytes already.
EVENT_KEY = String(128).with_variant(String(128, collation="C"), "postgresql")


def _timestamps() -> list[Column]:
    return [
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    ]


# Tables whose rows ingest updates again and again keep a quarter of each page free, so an update that changes
# no indexed column stays on its page (a heap-only tuple) and leaves the indexes alone (migration 0014).
FREE_SPACE_FOR_UPDATES = {"fillfactor": 75}

# Every accepted event, verbatim. Written first, in the same transaction as the model rows it produces.
lineage_events = Table(
    "lineage_events",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    # sha256 of the canonical JSON: the same event posted twice is stored once and applied once.
    Column("event_hash", String(64), nullable=False, unique=True),
    Column("event_kind", String(16), nullable=False),  # RUN_EVENT | DATASET_EVENT | JOB_EVENT
    Column("event_type", String(32)),  # START | RUNNING | COMPLETE | ABORT | FAIL | OTHER | NULL
    Column("event_time", UTCDateTime(), nullable=False),
    Column("job_namespace", NAME),
    Column("job_name", NAME),
    Column("dataset_namespace", NAME),
    Column("dataset_name", NAME),
    Column("run_id", Uuid()),
    Column("producer", Text),
    # Compressed with LZ4 where the server has it (migration 0014): cheaper to store before acknowledging.
    Column("payload", StoredJSONType, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    # Set when the model could not be built from an accepted event (a bug): the event is kept and
    # `headwater reindex` can apply it after a fix.
    Column("apply_error", Text),
    # NULL until the applier has built the model from the event (ingest acknowledges once the row is stored).
    Column("applied_at", UTCDateTime()),
    Index("ix_lineage_events_event_time", "event_time"),
    Index("ix_lineage_events_run_id", "run_id"),
    Index("ix_lineage_events_job", "job_namespace", "job_name"),
    # Only the events waiting for the applier: the next batch's claim and the read barrier read this.
    Index(
        "ix_lineage_events_unapplied",
        "id",
        postgresql_where=text("applied_at IS NULL"),
        sqlite_where=text("applied_at IS NULL"),
    ),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("owner_name", String(255), nullable=False, server_default="anonymous"),
    Column("description", Text),
    Column("is_hidden", Boolean, nullable=False, server_default=false()),
    *_timestamps(),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("connection_url", Text, nullable=False, server_default=""),
    Column("description", Text),
    *_timestamps(),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("namespace_id", Uuid(), ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_name", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("physical_name", NAME, nullable=False),
    Column("type", String(32), nullable=False, server_default="DB_TABLE"),
    Column("source_id", Uuid(), ForeignKey("sources.id", ondelete="SET NULL")),
    Column("source_name", NAME),
    Column("description", Text),
    Column("current_version_id", Uuid()),
    # Event key of the run/event that made current_version_id current; an older COMPLETE never wins.
    Column("current_version_key", EVENT_KEY, nullable=False, server_default=""),
    Column("last_modified_at", UTCDateTime()),
    Column("last_lifecycle_state", String(32)),
    Column("is_deleted", Boolean, nullable=False, server_default=false()),  # lifecycle DROP
    Column("is_hidden", Boolean, nullable=False, server_default=false()),  # soft delete via the API
    *_timestamps(),
    Index("uq_datasets_namespace_name", "namespace_id", "name", unique=True),
    # Search by substring of the name (name ILIKE '%q%'): a pg_trgm GIN index on Postgres (migration 0005);
    # SQLite scans.
    Index("ix_datasets_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}).ddl_if(
        dialect="postgresql"
    ),
    postgresql_with=FREE_SPACE_FOR_UPDATES,
)

# Aliases from the `symlinks` facet: another (namespace, name) for the same dataset.
dataset_symlinks = Table(
    "dataset_symlinks",
    metadata,
    Column("namespace_name", NAME, primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_dataset_symlinks_dataset_id", "dataset_id"),
)

# The fields of a dataset the API tagged (Marquez's field tags: a tag stays on the field from version to version).
# The dataset's fields themselves are its current version's schema (dataset_versions.fields).
dataset_fields = Table(
    "dataset_fields",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(), nullable=False),  # a field the dataset shows (a top-level field of its schema)
    Column("type", Text),  # type and description as shown when it was first tagged
    Column("description", Text),
    *_timestamps(),
    Index("uq_dataset_fields_dataset_name", "dataset_id", "name", unique=True),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    # Marquez's name-based MD5 version over the content (app/services/versions.py).
    Column("id", Uuid(), primary_key=True),
    Column("dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_name", NAME, nullable=False),
    Column("dataset_name", NAME, nullable=False),
    Column("run_id", Uuid()),  # the producing run; NULL for versions first seen as an input
    Column("schema_version_id", Uuid()),
    Column("fields", JSONType, nullable=False),  # the schema facet's fields, nested as sent
    Column("lifecycle_state", String(32)),
    Column("external_version", String(1024)),  # the `version` facet (Iceberg snapshot, Delta version…)
    Column("source_name", NAME),
    # Event key of the COMPLETE (or DatasetEvent) that published this version; "" while unpublished
    # (written by a run still in progress or failed, or a placeholder for data read before any writer was seen).
    Column("published_key", EVENT_KEY, nullable=False, server_default=""),
    # The column lineage of a published version (column_lineage.lineage_id); NULL when it has none.
    Column("column_lineage_id", Uuid()),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_dataset_versions_dataset", "dataset_id", "created_at"),
    Index("ix_dataset_versions_column_lineage", "column_lineage_id"),
    Index("ix_dataset_versions_published", "dataset_id", "published_key"),
    Index("ix_dataset_versions_run_id", "run_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("namespace_id", Uuid(), ForeignKey("namespaces.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_name", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("simple_name", NAME, nullable=False),
    Column("parent_job_id", Uuid(), ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("type", String(16), nullable=False, server_default="BATCH"),  # BATCH | STREAM | SERVICE
    Column("integration", String(64)),  # jobType.integration: AIRFLOW, SPARK, DBT…
    Column("job_type", String(64)),  # jobType.jobType: DAG, TASK, QUERY, MODEL…
    Column("description", Text),
    Column("location", Text),
    Column("current_version_id", Uuid()),
    Column("current_version_key", EVENT_KEY, nullable=False, server_default=""),
    Column("current_run_id", Uuid()),
    Column("current_run_key", EVENT_KEY, nullable=False, server_default=""),
    Column("symlink_target_id", Uuid(), ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("is_hidden", Boolean, nullable=False, server_default=false()),
    *_timestamps(),
    Index("uq_jobs_namespace_name", "namespace_id", "name", unique=True),
    Index("ix_jobs_parent_job_id", "parent_job_id"),
    # Job lists are ordered by last update, everywhere or per namespace.
    Index("ix_jobs_updated", "updated_at"),
    Index("ix_jobs_namespace_updated", "namespace_id", "updated_at"),
    # Search by substring of the name, as for datasets (migration 0005).
    Index("ix_jobs_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}).ddl_if(
        dialect="postgresql"
    ),
    postgresql_with=FREE_SPACE_FOR_UPDATES,
)

job_versions = Table(
    "job_versions",
    metadata,
    Column("id", Uuid(), primary_key=True),  # Marquez's name-based MD5 version over name, IO, location
    Column("job_id", Uuid(), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_name", NAME, nullable=False),
    Column("job_name", NAME, nullable=False),
    Column("location", Text),
    Column("latest_run_id", Uuid()),
    Column("latest_run_key", EVENT_KEY, nullable=False, server_default=""),
    *_timestamps(),
    Index("ix_job_versions_job", "job_id", "created_at"),
    postgresql_with=FREE_SPACE_FOR_UPDATES,
)

job_version_io = Table(
    "job_version_io",
    metadata,
    Column("job_version_id", Uuid(), ForeignKey("job_versions.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("io_type", String(8), primary_key=True),  # INPUT | OUTPUT
)

# The lineage graph as it stands: one row per job→dataset (OUTPUT) or dataset→job (INPUT) edge ever seen.
# `is_current` marks the edges of the job's current IO; traversal walks these rows only, never run history.
lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("job_id", Uuid(), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("io_type", String(8), primary_key=True),
    Column("is_current", Boolean, nullable=False),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("last_seen_key", EVENT_KEY, nullable=False),
    Column("last_run_id", Uuid()),
    Index("ix_lineage_edges_dataset", "dataset_id", "io_type"),
    postgresql_with=FREE_SPACE_FOR_UPDATES,
)

runs = Table(
    "runs",
    metadata,
    Column("id", Uuid(), primary_key=True),  # the OpenLineage runId
    Column("external_id", String(255)),
    Column("job_id", Uuid(), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("namespace_name", NAME, nullable=False),
    Column("job_name", NAME, nullable=False),
    Column("job_version_id", Uuid()),
    Column("parent_run_id", Uuid()),
    # NEW | RUNNING | COMPLETED | FAILED | ABORTED. Monotonic: see services/ingest.py (_upsert_run).
    Column("state", String(16), nullable=False),
    Column("state_rank", Integer, nullable=False),
    Column("state_key", EVENT_KEY, nullable=False),
    Column("transitioned_at", UTCDateTime()),
    Column("started_at", UTCDateTime()),
    Column("ended_at", UTCDateTime()),
    Column("nominal_start_time", UTCDateTime()),
    Column("nominal_end_time", UTCDateTime()),
    Column("nominal_key", EVENT_KEY, nullable=False, server_default=""),
    # The job's source code location as the run's latest event sending a sourceCodeLocation facet gives it (names
    # the run's job version, whatever other runs of the job say).
    Column("location", Text),
    Column("location_key", EVENT_KEY, nullable=False, server_default=""),
    *_timestamps(),
    Index("ix_runs_job_started", "job_id", "started_at"),
    # A job's runs, newest first, not-started last (Postgres; SQLite already sorts NULLs last when descending).
    Index("ix_runs_job_recent", "job_id", text("started_at DESC NULLS LAST"), text("created_at DESC")).ddl_if(
        dialect="postgresql"
    ),
    Index("ix_runs_job_nominal", "job_id", "nominal_start_time"),
    Index("ix_runs_parent_run_id", "parent_run_id"),
    # Recent failures, newest first (GET /api/v1/runs/failures).
    Index("ix_runs_state_ended", "state", "ended_at"),
    Index("ix_runs_job_version_id", "job_version_id"),  # retention: is a job version still used?
)

# Append-only state history of each run: one row per event that carried an eventType.
run_states = Table(
    "run_states",
    metadata,
    Column("run_id", Uuid(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("lineage_event_id", BigIntPK, primary_key=True),
    Column("event_type", String(32), nullable=False),
    Column("state", String(16)),  # NULL for OTHER: recorded, but changes no state
    Column("transitioned_at", UTCDateTime(), nullable=False),
    Index("ix_run_states_lineage_event_id", "lineage_event_id"),  # retention: is a raw event still named?
)

# Which dataset version each run read (INPUT) and wrote (OUTPUT).
run_io = Table(
    "run_io",
    metadata,
    Column("run_id", Uuid(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("io_type", String(8), primary_key=True),
    Column("id", Uuid(), nullable=False, unique=True),  # entity id for this link's input/output facets
    Column("dataset_version_id", Uuid(), nullable=False),
    Column("event_key", EVENT_KEY, nullable=False),
    # For reads: published_key of the version read. A writer's COMPLETE that arrives late re-points reads
    # made after it (event_key greater) that still point at an older version.
    Column("version_key", EVENT_KEY, nullable=False, server_default=""),
    # For reads: the earliest time the run read the dataset, whichever version its latest read points at. A
    # placeholder version dates from the earliest of its readers' (not from reads that have moved off it).
    Column("first_read_at", UTCDateTime()),
    Index("ix_run_io_version", "dataset_version_id"),
    Index("ix_run_io_dataset", "dataset_id", "io_type"),
    postgresql_with=FREE_SPACE_FOR_UPDATES,
)

# The current value of every facet of every entity: later event wins per (entity, facet name).
# A NULL facet is a tombstone left by `_deleted: true`, so an older event cannot bring the facet back.
facets = Table(
    "facets",
    metadata,
    Column("entity_id", Uuid(), primary_key=True),
    Column("name", String(), primary_key=True),
    # RUN | JOB | DATASET | DATASET_VERSION | INPUT | OUTPUT
    Column("kind", String(16), nullable=False),
    Column("facet", JSONType),
    # identifiers.json_content's hash of the facet (NULL for a tombstone): an event sending the
    # same content again updates only the key, without the document (ModelWriter.upsert_facets).
    Column("facet_hash", String(32)),
    Column("event_key", EVENT_KEY, nullable=False),
    # The event that set the value; NULL for a reader's description kept until a writer says otherwise.
    Column("lineage_event_id", BigIntPK),
    Index("ix_facets_kind_name", "kind", "name"),
    Index("ix_facets_lineage_event_id", "lineage_event_id"),  # retention: is a raw event still named?
)

# Column lineage, stored once per distinct content: a run after run publishing the same lineage for a dataset
# shares one set of rows (dataset_versions.column_lineage_id), instead of a copy per version.
column_lineage = Table(
    "column_lineage",
    metadata,
    # identifiers.column_lineage_id: the output dataset and the rows' content.
    Column("lineage_id", Uuid(), primary_key=True),
    Column("output_field", String(), primary_key=True),
    Column("input_dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("input_field", String(), primary_key=True),
    # The input version is the one the producing run read (run_io), not stored here: reads can be re-pointed.
    Column("output_dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("transformation_description", Text),
    Column("transformation_type", String(64)),
    Column("transformation_subtype", String(64)),
    Column("transformations", JSONType),
    Index("ix_column_lineage_input", "input_dataset_id", "input_field"),
    Index("ix_column_lineage_output_dataset", "output_dataset_id"),
)

# The tag catalogue and what is tagged (set through the API, not by events).
tags = Table(
    "tags",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text),
    *_timestamps(),
)

dataset_tags = Table(
    "dataset_tags",
    metadata,
    Column("dataset_id", Uuid(), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Uuid(), ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("tagged_at", UTCDateTime(), nullable=False),
)

dataset_field_tags = Table(
    "dataset_field_tags",
    metadata,
    Column("dataset_field_id", Uuid(), ForeignKey("dataset_fields.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Uuid(), ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("tagged_at", UTCDateTime(), nullable=False),
)

job_tags = Table(
    "job_tags",
    metadata,
    Column("job_id", Uuid(), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Uuid(), ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("tagged_at", UTCDateTime(), nullable=False),
)

# Saved backfill plans. The plan is kept as computed when saved (what the teams agreed to redo); its progress
# is worked out when read, from the runs completed since, so it never goes stale.
backfill_plans = Table(
    "backfill_plans",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("name", String(255)),
    Column("request", JSONType, nullable=False),
    Column("plan", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_backfill_plans_created_at", "created_at"),
)

# --- Incidents and webhooks ------------------------------------------------------------------------------
# Incidents are detected at ingest from what the event carries (a failed run, a failed assertion, a schema
# change) or by the server's periodic check (a late dataset). `open_key` names what an incident is about
# ("run_failed:<job id>", "data_quality:<dataset id>"…) while it is open and is NULL once resolved: at most one
# open incident per subject, whatever the number of failures or processes.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("kind", String(32), nullable=False),  # run_failed | data_quality | late | schema_change
    Column("status", String(16), nullable=False),  # open | resolved
    Column("open_key", String(128), unique=True),
    Column("namespace", NAME, nullable=False),  # of the job or dataset it is about
    Column("job_namespace", NAME),
    Column("job_name", NAME),
    Column("dataset_namespace", NAME),
    Column("dataset_name", NAME),
    Column("run_id", Uuid()),
    Column("dataset_version_id", Uuid()),
    Column("title", Text, nullable=False),
    Column("details", JSONType, nullable=False),
    # The backfill request (POST /api/v1/backfills/preview body) that plans the repair.
    Column("backfill_request", JSONType, nullable=False),
    # Downstream jobs, datasets, DAGs and owners: computed off the ingest path, by the delivery worker.
    Column("impact", JSONType),
    Column("occurrences", Integer, nullable=False, server_default="1"),
    # Only news from after this moment (event time) resolves the incident: late-arriving old events do not.
    Column("resolvable_after", UTCDateTime(), nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("resolution", Text),
    Index("ix_incidents_status_opened", "status", "opened_at"),
    Index("ix_incidents_opened", "opened_at"),
)

# Schema changes that dropped or retyped columns, recorded at ingest; whether downstream column lineage uses
# those columns (a walk) is decided by the worker, which opens the incident.
incident_candidates = Table(
    "incident_candidates",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("dataset_id", Uuid(), nullable=False),
    Column("dataset_version_id", Uuid(), nullable=False),
    Column("details", JSONType, nullable=False),
    Column("detected_at", UTCDateTime(), nullable=False),
    Column("processed_at", UTCDateTime()),
    Index("ix_incident_candidates_pending", "processed_at", "id"),
)

# The outbox: one row per incident opened or resolved, written in the transaction that opened or resolved it.
# The worker fans each out to the matching subscriptions (webhook_deliveries) and marks it done.
incident_outbox = Table(
    "incident_outbox",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("incident_id", Uuid(), ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(32), nullable=False),  # incident.opened | incident.resolved
    Column("created_at", UTCDateTime(), nullable=False),
    Column("lease_until", UTCDateTime()),
    Column("fanned_out_at", UTCDateTime()),
    Index("ix_incident_outbox_pending", "fanned_out_at", "id"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text),  # HMAC key for the signature header; write-only through the API
    Column("description", Text),
    Column("namespaces", JSONType, nullable=False),  # ["ns", …]
    Column("jobs", JSONType, nullable=False),  # [{"namespace", "name"}, …]
    Column("datasets", JSONType, nullable=False),
    Column("owners", JSONType, nullable=False),  # ["team-x", …]
    Column("kinds", JSONType, nullable=False),  # incident kinds; [] = all
    *_timestamps(),
)

# One webhook call to make per (subscription, incident, event): a subscriber hears about an incident once,
# however many paths lead to it. Also the delivery log: attempts, last status code, every attempt's outcome.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("subscription_id", Uuid(), ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("incident_id", Uuid(), ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("history", JSONType, nullable=False),  # [{"at", "statusCode", "error"}, …]
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_until", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Index("uq_webhook_deliveries_once", "subscription_id", "incident_id", "event", unique=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at"),
)

# --- Running saved plans through Airflow ------------------------------------------------------------------
# The Airflow instances Headwater may drive, each for the OpenLineage namespaces its provider emits in. The
# password and token are write-only through the API.
airflow_connections = Table(
    "airflow_connections",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("base_url", Text, nullable=False),
    Column("version", Integer, nullable=False),  # Airflow major version: 2 or 3
    Column("namespaces", JSONType, nullable=False),  # ["airflow-prod", …]
    Column("username", String(255)),
    Column("password", Text),
    Column("token", Text),
    *_timestamps(),
)

# One execution per saved plan: its state is all here, so a restarted (or another) server carries on.
backfill_executions = Table(
    "backfill_executions",
    metadata,
    Column("plan_id", Uuid(), ForeignKey("backfill_plans.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(16), nullable=False),  # running | paused | cancelling | cancelled | done
    Column("started_by", String(255), nullable=False),
    Column("options", JSONType, nullable=False),  # {"maxActiveRuns": 10}
    Column("reason", Text),  # why it is paused (a failed re-run) or cancelled
    Column("link", Text),  # where to look (the failed DAG run in Airflow's UI)
    Column("levels_done", Integer, nullable=False, server_default="0"),  # levels announced as done
    Column("started_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
)

# What the executor does for one DAG at one level: its tasks, logical-date ranges and what it sent to Airflow.
backfill_units = Table(
    "backfill_units",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("plan_id", Uuid(), ForeignKey("backfill_executions.plan_id", ondelete="CASCADE"), nullable=False),
    Column("level", Integer, nullable=False),
    Column("namespace", NAME, nullable=False),
    Column("dag_id", NAME),  # NULL: steps no Airflow task re-runs (redone by hand)
    Column("connection", String(255)),
    Column("tasks", JSONType, nullable=False),
    Column("ranges", JSONType, nullable=False),  # [{"start", "end"}] logical dates, inclusive
    Column("planned", JSONType, nullable=False),  # [[task id, logical date]] the plan's task instances
    Column("steps", JSONType, nullable=False),  # plan step node ids this unit redoes
    Column("mode", String(16)),  # backfill | clear | manual, decided when submitted
    Column("status", String(16), nullable=False),  # pending | submitting | running | done | failed | cancelled
    Column("airflow", JSONType, nullable=False),  # {"backfills": [{"range", "id"}], "cleared": [range, …]}
    Column("error", Text),
    Column("link", Text),
    Column("submitted_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("next_poll_at", UTCDateTime()),
    Column("poll_seconds", Float),
    Index("ix_backfill_units_plan", "plan_id", "level"),
)

# Everything done to a plan's execution: who started, paused, resumed or cancelled it, and every call to
# Airflow with what was sent and what came back (credentials left out).
backfill_audit = Table(
    "backfill_audit",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("plan_id", Uuid(), ForeignKey("backfill_executions.plan_id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(32), nullable=False),
    Column("method", String(8)),
    Column("url", Text),
    Column("request", JSONType),
    Column("status_code", Integer),
    Column("response", JSONType),
    Column("message", Text),
    Index("ix_backfill_audit_plan", "plan_id", "id"),
)

# backfill.started, backfill.level_done, backfill.failed, backfill.done for the subscriptions of the plan's owners
# (and namespaces, jobs), sent by the executor in order per plan and subscription, retried like incident webhooks.
backfill_webhooks = Table(
    "backfill_webhooks",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("plan_id", Uuid(), ForeignKey("backfill_executions.plan_id", ondelete="CASCADE"), nullable=False),
    Column("subscription_id", Uuid(), ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("payload", JSONType, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Index("ix_backfill_webhooks_due", "status", "next_attempt_at"),
)

# One executor across processes and replicas: whoever holds this row's lease advances every plan.
backfill_executor_lease = Table(
    "backfill_executor_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("lease_until", UTCDateTime(), nullable=False),
)

BACKFILL_RUN_TABLES = [
    backfill_webhooks,
    backfill_audit,
    backfill_units,
    backfill_executions,
    backfill_executor_lease,
    airflow_connections,
]
"""Execution tables, children first."""

INCIDENT_TABLES = [webhook_deliveries, subscriptions, incident_outbox, incident_candidates, incidents]
"""Incident and webhook tables, children first."""

MODEL_TABLES = [
    job_tags,
    dataset_field_tags,
    dataset_tags,
    tags,
    column_lineage,
    facets,
    run_io,
    run_states,
    runs,
    lineage_edges,
    job_version_io,
    job_versions,
    jobs,
    dataset_versions,
    dataset_fields,
    dataset_symlinks,
    datasets,
    sources,
    namespaces,
]
"""Tables built from the raw events, children first (safe order for deleting)."""
