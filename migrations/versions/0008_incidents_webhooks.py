"""Incidents, their outbox, webhook subscriptions and deliveries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_JSON = app.db.types.JSONType
_TIME = app.db.types.UTCDateTime(timezone=True)
_NAME = sa.String(length=1024)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("open_key", sa.String(length=128), nullable=True),
        sa.Column("namespace", _NAME, nullable=False),
        sa.Column("job_namespace", _NAME, nullable=True),
        sa.Column("job_name", _NAME, nullable=True),
        sa.Column("dataset_namespace", _NAME, nullable=True),
        sa.Column("dataset_name", _NAME, nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("dataset_version_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.Column("backfill_request", _JSON, nullable=False),
        sa.Column("impact", _JSON, nullable=True),
        sa.Column("occurrences", sa.Integer(), server_default="1", nullable=False),
        sa.Column("resolvable_after", _TIME, nullable=False),
        sa.Column("opened_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("open_key", name=op.f("uq_incidents_open_key")),
    )
    op.create_index("ix_incidents_opened", "incidents", ["opened_at"], unique=False)
    op.create_index("ix_incidents_status_opened", "incidents", ["status", "opened_at"], unique=False)

    op.create_table(
        "incident_candidates",
        sa.Column("id", app.db.types.BigIntPK, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_version_id", sa.Uuid(), nullable=False),
        sa.Column("details", _JSON, nullable=False),
        sa.Column("detected_at", _TIME, nullable=False),
        sa.Column("processed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_candidates")),
    )
    op.create_index("ix_incident_candidates_pending", "incident_candidates", ["processed_at", "id"], unique=False)

    op.create_table(
        "incident_outbox",
        sa.Column("id", app.db.types.BigIntPK, autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("fanned_out_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_outbox_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_outbox")),
    )
    op.create_index("ix_incident_outbox_pending", "incident_outbox", ["fanned_out_at", "id"], unique=False)

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("namespaces", _JSON, nullable=False),
        sa.Column("jobs", _JSON, nullable=False),
        sa.Column("datasets", _JSON, nullable=False),
        sa.Column("owners", _JSON, nullable=False),
        sa.Column("kinds", _JSON, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("history", _JSON, nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("delivered_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_webhook_deliveries_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"], unique=False)
    op.create_index(
        "ix_webhook_deliveries_subscription", "webhook_deliveries", ["subscription_id", "created_at"], unique=False
    )
    op.create_index(
        "uq_webhook_deliveries_once", "webhook_deliveries", ["subscription_id", "incident_id", "event"], unique=True
    )


def downgrade() -> None:
    for table in ("webhook_deliveries", "subscriptions", "incident_outbox", "incident_candidates", "incidents"):
        op.drop_table(table)  # their indexes go with them
