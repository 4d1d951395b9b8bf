"""A Marquez-shaped database for import tests and the import benchmark: Marquez's raw event table,
``lineage_events``, with the columns Marquez gives it (or an older install's, without ``created_at`` and
``_event_type``), filled the way Marquez fills it from the events it accepted."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from app.schemas.openlineage import parse_timestamp

CURRENT_TABLE = """
CREATE TABLE lineage_events (
    event_time timestamp with time zone NOT NULL,
    event jsonb NOT NULL,
    event_type text,
    job_name text,
    job_namespace text,
    producer text,
    run_uuid uuid,
    created_at timestamp with time zone DEFAULT now(),
    _event_type character varying(64) DEFAULT 'RUN_EVENT'
);
CREATE INDEX lineage_events_event_time ON lineage_events (event_time DESC);
"""

OLD_TABLE = """
CREATE TABLE lineage_events (
    event_time timestamp with time zone NOT NULL,
    event jsonb NOT NULL,
    event_type text,
    job_name text,
    job_namespace text,
    producer text,
    run_uuid uuid
);
"""


def libpq_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


def marquez_row(value: Any, *, event_time=None) -> dict[str, Any]:
    """The row Marquez writes for an event; ``value`` may be anything an older Marquez let through."""
    event = value if isinstance(value, dict) else {}
    job = event.get("job") if isinstance(event.get("job"), dict) else {}
    run = event.get("run") if isinstance(event.get("run"), dict) else {}
    kind = "RUN_EVENT" if run else "DATASET_EVENT" if "dataset" in event else "JOB_EVENT"
    return {
        "event_time": event_time or parse_timestamp(event["eventTime"]),
        "event": Jsonb(value),
        "event_type": event.get("eventType", ""),
        "job_name": job.get("name"),
        "job_namespace": job.get("namespace"),
        "producer": event.get("producer"),
        "run_uuid": _uuid_or_none(run.get("runId")),
        "_event_type": kind,
    }


def create_marquez_table(url: str, *, old: bool = False) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS lineage_events")
        conn.execute(OLD_TABLE if old else CURRENT_TABLE)


def fill_marquez_table(url: str, rows: Iterable[dict[str, Any]], *, old: bool = False) -> int:
    columns = ["event_time", "event", "event_type", "job_name", "job_namespace", "producer", "run_uuid"]
    if not old:
        columns.append("_event_type")
    count = 0
    with psycopg.connect(libpq_url(url)) as conn:
        with conn.cursor() as cursor, cursor.copy(f"COPY lineage_events ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
                count += 1
    return count


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
