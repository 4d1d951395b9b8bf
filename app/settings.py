"""All configuration, in one place.

Environment variables use the ``HEADWATER_`` prefix. Where a Marquez docker-compose user already has a
variable (``MARQUEZ_PORT``, ``POSTGRES_HOST`` …) it is honoured too, so an existing setup carries over.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

DEFAULT_SQLITE_URL = "sqlite:///headwater.db"
# History is not news: an event received this long after its eventTime opens no incident and sends no webhook.
# Long enough for a pipeline's client or queue to catch up after a night's outage, far shorter than the history
# a migration or replay posts (README, *Incidents and webhooks*).
DEFAULT_INCIDENT_MAX_EVENT_AGE = timedelta(hours=6)


class QualityRule(BaseModel):
    """A bound on a `dataQualityMetrics` value: a dataset version whose metric breaks it raises a data-quality
    incident. `dataset` and `column` are globs (`dataset` over `<namespace>:<name>`); metrics are the facet's
    names: rowCount, bytes, fileCount (per dataset), nullCount, distinctCount, sum, count, min, max (per column)."""

    dataset: str = "*"
    column: str | None = Field(None, description="Column glob; None for a dataset-level metric.")
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> QualityRule:
        if self.min is None and self.max is None:
            raise ValueError("a quality rule needs min or max")
        return self


class AirflowConnectionSetting(BaseModel):
    """An Airflow instance Headwater may drive (HEADWATER_AIRFLOW_CONNECTIONS, a JSON list of these): the jobs of
    `namespaces` (the provider's OPENLINEAGE_NAMESPACE) are its DAGs' tasks."""

    name: str = Field(min_length=1, max_length=255)
    baseUrl: str = Field(min_length=1)
    version: int = Field(3, ge=2, le=3)
    namespaces: list[str] = Field(min_length=1)
    username: str | None = None
    password: str | None = Field(None, repr=False)
    token: str | None = Field(None, repr=False)


class Settings(BaseSettings):
    # An empty variable (compose's `${X:-}`) means unset.
    model_config = SettingsConfigDict(
        env_prefix="HEADWATER_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    host: str = "0.0.0.0"
    port: int = Field(5000, validation_alias=AliasChoices("HEADWATER_PORT", "MARQUEZ_PORT", "port"))
    # /ping, /healthcheck and /metrics on their own port, as Marquez's admin port (0: off).
    admin_port: int = Field(
        5001, validation_alias=AliasChoices("HEADWATER_ADMIN_PORT", "MARQUEZ_ADMIN_PORT", "admin_port")
    )
    workers: int = 1
    # With several workers, uvicorn's supervisor pings each one every half second and kills (then replaces) one
    # that has not answered after this long, taking it for hung. Its 5 s default killed workers that were only
    # starting, or waiting for a loaded machine's CPU, and with them the requests they were serving.
    worker_healthcheck_seconds: int = Field(60, ge=1)

    # The database. Empty means: Postgres if Marquez's POSTGRES_HOST is set, else the embedded SQLite file.
    database_url: str = ""
    postgres_host: str | None = Field(None, validation_alias=AliasChoices("POSTGRES_HOST", "postgres_host"))
    postgres_port: int = Field(5432, validation_alias=AliasChoices("POSTGRES_PORT", "postgres_port"))
    postgres_db: str = Field("marquez", validation_alias=AliasChoices("POSTGRES_DB", "postgres_db"))
    postgres_user: str = Field("marquez", validation_alias=AliasChoices("POSTGRES_USER", "postgres_user"))
    postgres_password: str = Field("marquez", validation_alias=AliasChoices("POSTGRES_PASSWORD", "postgres_password"))
    db_pool_size: int = 10
    db_max_overflow: int = 10

    migrate_on_start: bool = True
    # How long `headwater serve` waits for the database to answer before giving up (compose starts both at once).
    db_wait_seconds: float = 30
    # Largest accepted request body (after gzip inflation), in bytes.
    max_body_bytes: int = 16 * 1024 * 1024
    # How long an event whose transaction keeps losing races (deadlock, serialization failure, busy SQLite) is
    # retried, with growing pauses, before the client gets a 503. Under the OpenLineage client's 5 s timeout.
    ingest_retry_seconds: float = 3.0
    # Ingest acknowledges an event once it is stored in the log; the applier builds the model from the log
    # afterwards. Reads first wait until what was acknowledged before them is applied, for at most this long;
    # then they answer anyway, saying how far behind they are (X-Headwater-Unapplied-Events, …-Lag-Seconds).
    read_wait_seconds: float = Field(5.0, ge=0)
    log_batch_size: int = Field(1000, ge=1)  # events stored per log transaction at most (group commit)
    # Events applied per applier transaction at most; unset: 1000 on Postgres, 200 on SQLite (apply_batch).
    apply_batch_size: int | None = Field(None, ge=1)
    # How often an idle applier looks for events that another process stored and did not apply (its own
    # process's events wake it at once).
    apply_poll_seconds: float = Field(1.0, gt=0)
    log_level: str = "info"
    log_format: str = Field("text", pattern="^(text|json)$")  # json: one JSON object per line
    # Move what start-up made (modules, metadata, the app) out of the garbage collector's sight once the server
    # is up: its full collections otherwise rescan it all while large responses are built (20-30% of a big
    # lineage or backfill answer). Tests, which build many apps in one process, turn it off.
    freeze_gc_after_start: bool = True
    # Allocations between young-generation collections (Python's default: 700). Large answers (a day-wide
    # backfill plan: hundreds of thousands of containers, no cycles) otherwise pay ~30% for collections that
    # find nothing to free; reference counting frees them as usual. 0 leaves Python's default.
    gc_young_threshold: int = Field(50_000, ge=0)
    # Comma-separated API keys; when set, writes need `Authorization: Bearer <one of them>`. Never logged.
    # `key` may read and write; `key:write` may only write (a pipeline's key, useless to read metadata with).
    api_keys: str = Field("", repr=False)
    # With keys set: reads need a read+write key too.
    protect_reads: bool = False
    # Periodic retention inside `headwater serve` (off when unset): what is older than this many days is purged
    # every `retention_interval_seconds`, `retention_batch_size` rows per transaction (Marquez: 7 days, 15 min, 1000).
    retention_days: float | None = Field(None, gt=0)
    retention_interval_seconds: float = Field(900, gt=0)
    retention_batch_size: int = Field(1000, gt=0)

    # Incidents and webhooks. The worker (fan-out to subscriptions, webhook delivery, the late-dataset check)
    # runs in every server process; rows are claimed with leases, so each delivery is made once.
    incident_worker: bool = True
    worker_poll_seconds: float = Field(1.0, gt=0)  # how often the worker looks for work
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_concurrency: int = Field(8, ge=1)  # deliveries in flight at once, per server process
    webhook_max_attempts: int = Field(10, ge=1)
    webhook_backoff_seconds: float = Field(10.0, gt=0)  # first retry delay; doubles per attempt
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0)
    late_check_seconds: float = Field(60.0, gt=0)
    # A dataset is late when its producing job has not completed a run for cadence × (1 + tolerance).
    late_tolerance: float = Field(0.5, ge=0)
    late_min_runs: int = Field(3, ge=2)  # completed runs with nominal times needed to learn a cadence
    # Events older than this when received (eventTime vs arrival) are history: no incident, no webhook, and a
    # job whose last completion was history is not judged late. Seconds or an ISO 8601 duration (PT6H, P7D).
    incident_max_event_age: timedelta = Field(DEFAULT_INCIDENT_MAX_EVENT_AGE, gt=timedelta(0))
    # Also sign deliveries the pre-Standard-Webhooks way (X-Headwater-Signature, body only) until receivers move.
    webhook_legacy_signature: bool = True
    # JSON list of QualityRule, e.g. [{"dataset": "warehouse:*", "column": "id", "metric": "nullCount", "max": 0}].
    quality_rules: list[QualityRule] = Field(default_factory=list)
    # Running saved backfill plans through Airflow (README, *Running a plan*). The executor runs in every
    # server process; a lease row lets one of them drive the plans at a time.
    backfill_executor: bool = True
    backfill_step_seconds: float = Field(2.0, gt=0)  # how often the executor advances running plans
    # Airflow is asked about a submitted DAG only when lineage has not shown it done: first after this many
    # seconds, then twice as long each time, up to the maximum.
    backfill_poll_seconds: float = Field(30.0, gt=0)
    backfill_poll_max_seconds: float = Field(600.0, gt=0)
    backfill_max_active_dags: int = Field(4, ge=1)  # DAGs being re-run at once, across every plan
    backfill_max_active_runs: int = Field(10, ge=1)  # an Airflow 3 backfill's max_active_runs by default
    airflow_timeout_seconds: float = Field(30.0, gt=0)
    # Connections from the server's configuration (JSON list); those made through the API live in the database.
    airflow_connections: list[AirflowConnectionSetting] = Field(default_factory=list, repr=False)
    # Where users reach this server (e.g. https://lineage.example.com): makes links in notifications absolute.
    public_url: str = ""

    @property
    def api_key_list(self) -> list[str]:
        return [key for key, _ in self.api_key_roles]

    @property
    def api_key_roles(self) -> list[tuple[str, str]]:
        """(key, "readwrite" | "write") for each configured key."""
        roles = []
        for entry in (e.strip() for e in self.api_keys.split(",")):
            if not entry:
                continue
            key, _, role = entry.rpartition(":") if entry.endswith(":write") else (entry, "", "readwrite")
            roles.append((key, role))
        return roles

    @field_validator("incident_max_event_age", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        # Plain seconds, like the other durations here (pydantic reads only ISO 8601 or HH:MM:SS from text).
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        # Users paste libpq-style URLs; SQLAlchemy needs the driver spelled out.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @cached_property
    def sqlalchemy_url(self) -> URL:
        if self.database_url:
            return make_url(self.database_url)
        if self.postgres_host:
            return URL.create(
                "postgresql+psycopg",
                username=self.postgres_user,
                password=self.postgres_password,
                host=self.postgres_host,
                port=self.postgres_port,
                database=self.postgres_db,
            )
        return make_url(DEFAULT_SQLITE_URL)

    @property
    def apply_batch(self) -> int:
        """Most events one applier transaction applies. A larger batch costs less per event (Postgres, applier
        alone: 200 → 1000 is 12% less CPU per event), but SQLite has one writer at a time, so the event log's
        commits wait while a batch is applied there: its batches stay short. Either way a read waits at most
        one batch longer for what it must see."""
        if self.apply_batch_size is not None:
            return self.apply_batch_size
        return 200 if self.is_sqlite else 1000

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.get_backend_name() == "sqlite"

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite or not self.sqlalchemy_url.database:
            return None
        return Path(self.sqlalchemy_url.database)
