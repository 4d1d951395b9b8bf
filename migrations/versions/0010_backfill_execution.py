"""Running saved backfill plans through Airflow: connections, one execution per plan with its units (a DAG
at a level), the audit log of every call made, its webhooks, and the lease that makes one executor across
processes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TIME = app.db.types.UTCDateTime(timezone=True)
_JSON = app.db.types.JSONType
_NAME = sa.String(1024)


def upgrade() -> None:
    op.create_table(
        "airflow_connections",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("namespaces", _JSON, nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("password", sa.Text()),
        sa.Column("token", sa.Text()),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_airflow_connections"),
    )
    op.create_table(
        "backfill_executions",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(255), nullable=False),
        sa.Column("options", _JSON, nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("link", sa.Text()),
        sa.Column("levels_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["backfill_plans.id"],
            name="fk_backfill_executions_plan_id_backfill_plans",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", name="pk_backfill_executions"),
    )
    op.create_table(
        "backfill_units",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("namespace", _NAME, nullable=False),
        sa.Column("dag_id", _NAME),
        sa.Column("connection", sa.String(255)),
        sa.Column("tasks", _JSON, nullable=False),
        sa.Column("ranges", _JSON, nullable=False),
        sa.Column("planned", _JSON, nullable=False),
        sa.Column("steps", _JSON, nullable=False),
        sa.Column("mode", sa.String(16)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("airflow", _JSON, nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("link", sa.Text()),
        sa.Column("submitted_at", _TIME),
        sa.Column("finished_at", _TIME),
        sa.Column("next_poll_at", _TIME),
        sa.Column("poll_seconds", sa.Float()),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["backfill_executions.plan_id"],
            name="fk_backfill_units_plan_id_backfill_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backfill_units"),
    )
    op.create_index("ix_backfill_units_plan", "backfill_units", ["plan_id", "level"])
    op.create_table(
        "backfill_audit",
        sa.Column("id", app.db.types.BigIntPK, autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("method", sa.String(8)),
        sa.Column("url", sa.Text()),
        sa.Column("request", _JSON),
        sa.Column("status_code", sa.Integer()),
        sa.Column("response", _JSON),
        sa.Column("message", sa.Text()),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["backfill_executions.plan_id"],
            name="fk_backfill_audit_plan_id_backfill_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backfill_audit"),
    )
    op.create_index("ix_backfill_audit_plan", "backfill_audit", ["plan_id", "id"])
    op.create_table(
        "backfill_webhooks",
        sa.Column("id", app.db.types.BigIntPK, autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("delivered_at", _TIME),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["backfill_executions.plan_id"],
            name="fk_backfill_webhooks_plan_id_backfill_executions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name="fk_backfill_webhooks_subscription_id_subscriptions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backfill_webhooks"),
    )
    op.create_index("ix_backfill_webhooks_due", "backfill_webhooks", ["status", "next_attempt_at"])
    op.create_table(
        "backfill_executor_lease",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("lease_until", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_backfill_executor_lease"),
    )


def downgrade() -> None:
    op.drop_table("backfill_executor_lease")
    op.drop_index("ix_backfill_webhooks_due", table_name="backfill_webhooks")
    op.drop_table("backfill_webhooks")
    op.drop_index("ix_backfill_audit_plan", table_name="backfill_audit")
    op.drop_table("backfill_audit")
    op.drop_index("ix_backfill_units_plan", table_name="backfill_units")
    op.drop_table("backfill_units")
    op.drop_table("backfill_executions")
    op.drop_table("airflow_connections")
